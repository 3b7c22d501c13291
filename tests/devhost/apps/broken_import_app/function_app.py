"""An app whose import fails, for the start-up error tests."""

import azure.functions as func

app = func.FunctionApp()
raise ImportError("devhost-test: missing dependency frobnicate")

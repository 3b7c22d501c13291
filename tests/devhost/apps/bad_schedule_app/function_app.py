"""An app with an invalid timer schedule, for the start-up error tests."""

import azure.functions as func

app = func.FunctionApp()


@app.timer_trigger(schedule="0 */5 * * *", arg_name="timer")
def five_field_cron(timer: func.TimerRequest) -> None:
    pass

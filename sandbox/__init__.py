"""The local stand-ins: Azurite, an OCI registry over throwaway TLS, image building and
pushing, a Kubernetes API simulator, a Key Vault fake, a Teams sink, headless Chromium, a
fault proxy, `policy_text` (the release policy the test stacks run), and the stack `make run`
and `make demo` start from them.

Used by tests, benchmarks and `make run`; never deployed. No business logic lives here.
"""

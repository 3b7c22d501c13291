"""The local stack: throwaway TLS, an OCI registry, image building/pushing and a fault proxy.

Stand-ins for cloud services used by tests, benchmarks and (later) `make run`. No business
logic lives here.
"""

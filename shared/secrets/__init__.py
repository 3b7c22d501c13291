"""Secrets of each environment: Key Vault in Azure, local app settings as the embedded default.

`names` (Key Vault name rules and the local naming scheme) and `references` (the start-up
check for unresolved Key Vault references) are pure; `keyvault` reads one vault through
`azure-keyvault-secrets` with an in-memory cache; `local` reads app settings; `sources`
turns an environment's secrets spec from the release policy into a cached source.

Secret values reach the activities that use them and nothing else: they never enter
orchestration input or output, custom status, logs or exception messages. Pass secret
*names* around and resolve them where they are used.
"""

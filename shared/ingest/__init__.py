"""Registry event ingestion: payload parsing, the start/ignore decision, release ids.

Pure: `payloads` turns every delivery shape into `RegistryEvent`s and `decisions`
says what becomes of each. The HTTP and Event Grid triggers do the I/O.
"""

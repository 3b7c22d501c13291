"""Container registry adapter: digests, manifests, tags and zero-copy promotion.

`manifests` and `references` are pure; `client` talks to a registry through
`azure-containerregistry`; `promotion` moves an image between repositories.
"""

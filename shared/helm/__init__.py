"""Helm chart targets: Helm v4's own Go SDK (helm-python-sdk) driven per environment.

`access` reaches a cluster (one SDK `Config` per action), `charts` fetches and pins charts,
`revisions` reads what Helm recorded, `target` is the `helm` kind of the deploy seam.
"""

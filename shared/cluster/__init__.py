"""Kubernetes adapter: deploy by digest, watch the rollout, roll back, verify over HTTP.

`rollout` holds the pure rules over Kubernetes JSON; `connection` builds API
clients (kubeconfig text or AKS with an Entra token); `deployments` does the I/O;
`verification` runs HTTP checks into `Evidence`; `patcher` is the `deployment` kind of
the deploy seam (shared/deploy/target.py) and `targets` picks a kind for a request.
"""

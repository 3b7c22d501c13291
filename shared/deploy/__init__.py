"""The deploy seam: the interface every target kind implements, and the evidence it returns.

`target` holds the protocol (snapshot, deploy by digest, await readiness, verify, restore);
`evidence` the typed result of a verification. Implementations live with their adapters
(shared/cluster/patcher.py); shared/cluster/targets.py picks one by the target's kind.
"""

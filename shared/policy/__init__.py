"""The release policy: which pushes become releases and how they walk through environments.

`load_policy` / `parse_policy` read the YAML file (`docs/release-policy.md` describes it)
and raise `PolicyError` with every problem's file, line and field. `Policy` answers
ingestion (which service owns a repository, what is a promotion target); `Service`
filters and orders tags and gives the resolved snapshot a release carries, so a policy
edit never changes a running release. Pure apart from reading the file;
`python -m shared.policy check FILE…` validates files.
"""

from .analysis import Analysis, Metric, Threshold
from .errors import PolicyError, Problem
from .helm import HelmTarget, HelmTest
from .loader import load_app_policy, load_policy, parse_policy, policy_path
from .model import Environment, Gate, Policy, Promotion, Rollback, Service, TagFilter
from .strategy import BlueGreen, Canary, CanaryStep, Rolling, Strategy
from .versions import Version, VersionRange, parse_range, parse_version, version_key

__all__ = ["Analysis", "BlueGreen", "Canary", "CanaryStep", "Environment", "Gate", "HelmTarget",
           "HelmTest", "Metric", "Policy", "PolicyError", "Problem", "Promotion", "Rollback",
           "Rolling", "Service", "Strategy", "TagFilter", "Threshold", "Version",
           "VersionRange", "load_app_policy", "load_policy", "parse_policy", "parse_range",
           "parse_version", "policy_path", "version_key"]

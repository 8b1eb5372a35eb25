"""leadscore: serverless, explainable, retry-exact lead scoring."""

__version__ = "0.1.0"

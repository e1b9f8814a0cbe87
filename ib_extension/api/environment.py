"""Environment variables: the ones that carry secrets, and the ones a candidate's side uses.

A process's initial environment stays readable in /proc/<pid>/environ for its whole life,
so the service keeps its secrets in files (service/secrets.py), and a candidate's server
and kernels, which run the candidate's code, never hold any of FORBIDDEN_ENV
(ARCHITECTURE.md)."""

# The LLM provider's key, in order of preference (the first one set is used).
PROVIDER_KEY_ENV = ("OPENAI_API_KEY", "IB_LLM_API_KEY", "AZURE_OPENAI_API_KEY")
# Every variable that may hold a secret of the service.
SECRET_ENV = (*PROVIDER_KEY_ENV, "IB_TOKEN", "JUPYTERHUB_API_TOKEN")
# Never in a candidate's environment: the service's secrets and where they are. (On
# JupyterHub a candidate's server holds a JUPYTERHUB_API_TOKEN of its own, scoped to that
# server, which jupyterhub-singleuser needs; the service's is never handed to it.)
FORBIDDEN_ENV = (*PROVIDER_KEY_ENV, "IB_TOKEN", "IB_URL", "IB_TOKEN_FILE", "IB_HUB_TOKEN_FILE")
# What a candidate's server is given: where the service is and its session's token.
SERVICE_URL_ENV = "IB_SERVICE_URL"
SESSION_TOKEN_ENV = "IB_SESSION_TOKEN"

"""Environment variables that carry secrets, and the ones a candidate's side uses.

The candidate's server and kernels run the candidate's code, so none of SECRET_ENV or
the interviewer's credentials may ever be in their environment (ARCHITECTURE.md)."""

# The LLM provider's key, under the names the service accepts.
SECRET_ENV = ("OPENAI_API_KEY", "IB_LLM_API_KEY", "AZURE_OPENAI_API_KEY")
# Never in a candidate's environment: the provider key and the interviewer's credentials.
FORBIDDEN_ENV = (*SECRET_ENV, "IB_TOKEN", "IB_URL")
# What a candidate's server is given: where the service is and its session's token.
SERVICE_URL_ENV = "IB_SERVICE_URL"
SESSION_TOKEN_ENV = "IB_SESSION_TOKEN"

"""What runs inside JupyterHub when Interview Buddy uses it (`ib hub`): the candidate-link
login (an authenticator mixin with its own login handler), the preparation of a
candidate's server, and the hub's configuration. It imports only the contract (api)."""

"""Interview Buddy: AI-assisted coding interviews on Jupyter.

Two Jupyter server extensions, each enabled only where it runs: `ib_extension.service`
(the ib service, `ib serve`) and `ib_extension.candidate` (a candidate's JupyterLab,
`ib lab` or a JupyterHub single-user server)."""

__version__ = "0.1.0"

"""aifactoryctl: the command line of the AI factory fleet operator.

One module per subcommand group (`place`, `crds`, ...); each exposes `register(subparsers)`
and sets its handler with `set_defaults(func=...)`, so adding `fleet`, `explain` or `cordon`
later is one new module and one line in `main.py`.
"""

"""The sans-I/O core: every routing, state and session decision, and no I/O.

Nothing here imports a web framework, a template engine, a store client or
a socket. Flows are generators that yield effects (`core.effects`) and
return an outcome; `core.drive` is the only code that performs effects.
"""

"""The bottom layer: errors, registry, seeds, typed config, the run directory and its files.

Nothing here imports a stage, a component package (``generators``, ``discriminators``,
``annotation``) or the CLI; everything else may import from here. Importing this package
imports nothing heavy: modules that need torch (``lm``, ``models``) import it themselves.
"""

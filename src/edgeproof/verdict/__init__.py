"""The CI-side verdict: one rule engine (:mod:`.rules`) for the build gate and the device gate.

Runs where results are judged (a hosted CI job or the build machine), never on the board: the
board-side package :mod:`edgeproof.device` imports nothing from here. Python 3.8-clean all the same.
"""

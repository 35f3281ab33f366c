"""The programs that ninja runs: one module per job, plus shared pieces.

Installed as `acigen.helpers`; each job runs as `python -m acigen.helpers.X`.
"""

"""Figures drawn only from saved results (``results/<experiment>/<variant>/``).

Each ``fig_<nn>_<slug>.py`` has ``draw(results_root, out_dir, variant="auto")`` that loads one
experiment's results and writes ``<stem>.png``, ``<stem>.pdf`` and a caption ``<stem>.txt``;
it returns ``None`` when those results do not exist. ``python -m paper_figures`` draws them all.
"""

"""One parse of ``dags_loader.py``: what to serve (policy), what to fetch from the store
(fetcher), the last-known-good cache, and the DAGs built from them (``parse.load_dags``)."""

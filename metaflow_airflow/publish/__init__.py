"""The publish side: compiles a Metaflow flow into a manifest, uploads its code package and
writes the manifest. Imports Metaflow (in the flow process), never Airflow."""

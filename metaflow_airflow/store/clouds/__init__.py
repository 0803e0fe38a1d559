"""One module per cloud (a local folder, S3, Azure Blob, GCS) behind one small interface."""

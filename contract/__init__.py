"""The contract between the deployables: facts ``functions/`` and ``training_jobs/`` both rely on.

Pydantic and the standard library only, so the Lambda code asset and the training image both ship it.
Each fact is defined here once and imported everywhere else (``tests/unit/test_contract.py`` fails
when a second definition appears):

- ``layout``: where artifacts, catalogue documents and dataset snapshots live in S3, and their names;
- ``manifest``: a model version's ``manifest.json`` and when its training data ends;
- ``popular``: the popular-items document (``popular.json``);
- ``catalog_view``: the serving view of a tenant's current catalogue;
- ``interactions``: interaction types, their codes and their weights;
- ``model_types``: the model types a job may ask for;
- ``training_job``: the training-job record both the workflow and the container write;
- ``workflow``: each Step Functions task's input and output;
- ``s3``: the error codes by which S3 says an object does not exist.
"""

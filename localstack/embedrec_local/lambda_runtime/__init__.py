"""A Lambda-faithful local runtime: each function in containers started from its built bundle.

``embedrec local --runtime lambda`` (``make run-lambda``) runs every function the way Lambda does:

- from its BUILT bundle (``layers/build``: the code asset and the function's layers, plus boto3 as the
  Python runtime provides it) on CPython 3.12, isolated from the dev virtualenv (``bootstrap.py``);
- with exactly the environment, memory size and timeout of the synthesised template
  (``definitions.py``; Lambda's own variables and the AWS endpoint added);
- one process per container, one invocation at a time; frozen (SIGSTOP) between invocations,
  reclaimed (SIGKILL) after ``EMBEDREC_LAMBDA_IDLE_SECONDS`` idle; more containers under concurrent
  load up to ``EMBEDREC_LAMBDA_MAX_CONTAINERS`` per function (``pool.py``);
- SnapStart where the template sets it (serving): the init phase and the before-snapshot hooks run
  once, and each cold start forks a container from that process, which runs the after-restore hooks
  (``container.Snapshot``; ``EMBEDREC_LAMBDA_SNAP_START=false`` turns it off);
- killed above its memory size (an RSS watchdog) or past its timeout; 6 MB payloads each way
  (``container.py``);
- behind an HTTP API emulation building payload 2.0 events as API Gateway does (``gateway.py``);
  Step Functions (moto) and the drop folder invoke through the same containers.
"""

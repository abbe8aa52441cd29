"""moto server (5.2.5) for the ECS source tests, with its gaps patched the
way real ECS behaves, plus a request counter and a fault switch.

Run: python3 tests/it/moto_server.py PORT   (loopback only)

Patches, each making moto behave like real ECS (see the shared notes):
 1. Task status drift frozen: moto moves a task one step towards STOPPED on
    every DescribeTasks; real tasks stay RUNNING until stopped.
 2. Bridge tasks get `containers[].networkBindings`: the fixed host port of
    each port mapping, or a dynamic one (32768 and up, per instance) when the
    mapping has hostPort 0 or none. moto fills no bindings at all.
 3. hostPort 0 reserves no port: moto reserved a literal port 0, so only one
    dynamic-port task fitted on an instance.
 4. ListTasks pages (maxResults, at most 100, and nextToken); moto returned
    everything at once.
 5. DescribeTasks refuses more than 100 tasks (InvalidParameterException),
    as ECS does, and finds tasks by ARN in a dict (moto scanned every task
    for every ARN, too slow for the 10 000-task measurement).

Test hooks (not AWS), under /_ecsdns/:
  GET  /_ecsdns/calls        {"ListTasks": n, ...} requests per operation
  POST /_ecsdns/calls/reset  zero the counters
  POST /_ecsdns/fault        {"operations": ["ListTasks"] | null (all), "status": 400}
                             makes those operations fail with ThrottlingException;
                             {"operations": []} ends it.
  POST /_ecsdns/task         {"task", "healthStatus"?, "desiredStatus"?, "lastStatus"?}
                             sets a task's state as real ECS changes it (see below).
"""

import io
import json
import sys
import threading
from urllib.parse import parse_qs

from moto.ecs import models as ecs_models
from moto.ecs import responses as ecs_responses
from moto.ecs.exceptions import InvalidParameterException
from moto.moto_api import state_manager

# 1. Frozen lifecycle.
state_manager.set_transition(
    model_name="ecs::task",
    transition={"progression": "manual", "times": 1_000_000_000},
)

# 2. networkBindings for bridge tasks.
_next_dynamic_port = {}
_port_lock = threading.Lock()
_original_task_init = ecs_models.Task.__init__


def _task_init(self, cluster, task_definition, container_instance_arn, *args, **kwargs):
    _original_task_init(self, cluster, task_definition, container_instance_arn, *args, **kwargs)
    mode = task_definition.network_mode or "bridge"
    if mode != "bridge" or not container_instance_arn:
        return
    definition = task_definition.container_definitions[0]
    bindings = []
    for mapping in definition.get("portMappings", []):
        host_port = mapping.get("hostPort") or 0
        if host_port == 0:
            with _port_lock:
                host_port = _next_dynamic_port.get(container_instance_arn, 32768)
                _next_dynamic_port[container_instance_arn] = host_port + 1
        bindings.append(
            {
                "bindIP": "0.0.0.0",
                "containerPort": mapping["containerPort"],
                "hostPort": host_port,
                "protocol": mapping.get("protocol", "tcp"),
            }
        )
    self.containers[0].network_bindings = bindings


ecs_models.Task.__init__ = _task_init

# 3. hostPort 0 is dynamic, not a reserved port.
_original_requirements = ecs_models.EC2ContainerServiceBackend._calculate_task_resource_requirements


def _requirements(task_definition):
    out = _original_requirements(task_definition)
    out["PORTS"] = [p for p in out["PORTS"] if p not in (0, "0", None)]
    return out


ecs_models.EC2ContainerServiceBackend._calculate_task_resource_requirements = staticmethod(_requirements)


# 4. ListTasks pages.
def _list_tasks(self):
    cluster_str = self._get_param("cluster", "default")
    tasks = self.ecs_backend.list_tasks(
        cluster_str,
        self._get_param("containerInstance"),
        self._get_param("family"),
        self._get_param("startedBy"),
        self._get_param("serviceName"),
        self._get_param("desiredStatus"),
    )
    arns = [t.task_arn for t in tasks]
    size = min(int(self._get_param("maxResults") or 100), 100)
    start = int(self._get_param("nextToken") or 0)
    result = {"taskArns": arns[start : start + size]}
    if start + size < len(arns):
        result["nextToken"] = str(start + size)
    return ecs_responses.ActionResult(result)


ecs_responses.EC2ContainerServiceResponse.list_tasks = _list_tasks


# 5. DescribeTasks: at most 100, looked up by ARN or id.
def _describe_tasks(self, cluster_str, tasks):
    self._get_cluster(cluster_str)
    if not tasks:
        raise InvalidParameterException("Tasks cannot be empty.")
    if len(tasks) > 100:
        raise InvalidParameterException("Tasks cannot have more than 100 items.")
    by_id = {}
    for cluster_tasks in self.tasks.values():
        for task_arn, task in cluster_tasks.items():
            by_id[task_arn.split("/")[-1]] = task
    response = []
    for wanted in tasks:
        task = by_id.get(wanted.split("/")[-1])
        if task is not None and task not in response:
            task.advance()
            response.append(task)
    return response


ecs_models.EC2ContainerServiceBackend.describe_tasks = _describe_tasks


# Request counter and fault switch.
_calls = {}
_fault = {"operations": [], "status": 400}
_lock = threading.Lock()


def _operation(environ):
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return target.split(".")[-1]
    # EC2 (query protocol): Action=... in the form body.
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    action = parse_qs(body.decode("utf-8", "replace")).get("Action")
    return action[0] if action else None


def _json(start_response, status, value):
    body = json.dumps(value).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def _hooks(app):
    def wrapped(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_ecsdns/"):
            with _lock:
                if path == "/_ecsdns/calls":
                    return _json(start_response, "200 OK", dict(_calls))
                if path == "/_ecsdns/calls/reset":
                    _calls.clear()
                    return _json(start_response, "200 OK", {})
                if path == "/_ecsdns/fault":
                    length = int(environ.get("CONTENT_LENGTH") or 0)
                    spec = json.loads(environ["wsgi.input"].read(length) or b"{}")
                    _fault["operations"] = spec.get("operations", None)
                    _fault["status"] = int(spec.get("status", 400))
                    return _json(start_response, "200 OK", _fault)
            return _json(start_response, "404 Not Found", {})
        operation = _operation(environ)
        if operation:
            with _lock:
                _calls[operation] = _calls.get(operation, 0) + 1
                failing = _fault["operations"] is None or operation in _fault["operations"]
                status = _fault["status"]
            if failing:
                # What AWS answers when a caller is rate-limited.
                return _json(
                    start_response,
                    f"{status} Error",
                    {"__type": "ThrottlingException", "message": "Rate exceeded (injected by the test)"},
                )
        return app(environ, start_response)

    return wrapped


# Task-state hook (a test hook, not AWS), for tests/it/lifecycle.rs. It sets
# what real ECS changes on a task but moto never does:
#  - healthStatus: ECS derives it from the essential containers' health
#    checks (UNKNOWN while they start, then HEALTHY or UNHEALTHY, as the
#    agent reports); moto reports none, which reads as UNKNOWN.
#  - desiredStatus alone: at a stop decision (StopTask, a scale-in, a
#    deployment replacing the task) ECS sets desiredStatus STOPPED at once
#    while lastStatus stays RUNNING until the containers have exited (up to
#    stopTimeout after SIGTERM); moto's StopTask sets both at the same time.
#  - lastStatus, for the steps after that.
#   POST /_ecsdns/task {"task": ARN or id, "healthStatus"?, "desiredStatus"?, "lastStatus"?}
#   -> {"task": ARN, "healthStatus", "desiredStatus", "lastStatus"}; 404 when no such task.
def _find_task(wanted):
    from moto.ecs.models import ecs_backends

    task_id = wanted.split("/")[-1]
    for account in dict.values(ecs_backends):
        for backend in dict.values(account):
            for cluster_tasks in backend.tasks.values():
                for arn, task in cluster_tasks.items():
                    if arn.split("/")[-1] == task_id:
                        return task
    return None


def _task_state_hook(app):
    def wrapped(environ, start_response):
        if environ.get("PATH_INFO", "") != "/_ecsdns/task":
            return app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        spec = json.loads(environ["wsgi.input"].read(length) or b"{}")
        with _lock:
            task = _find_task(spec.get("task", ""))
            if task is None:
                return _json(start_response, "404 Not Found", {"task": spec.get("task")})
            if "healthStatus" in spec:
                task.health_status = spec["healthStatus"]
            if "desiredStatus" in spec:
                task.desired_status = spec["desiredStatus"]
            if "lastStatus" in spec:
                task.last_status = spec["lastStatus"]
            state = {
                "task": task.task_arn,
                "healthStatus": getattr(task, "health_status", None),
                "desiredStatus": task.desired_status,
                "lastStatus": task.last_status,
            }
        return _json(start_response, "200 OK", state)

    return wrapped


def main():
    from moto import server
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import run_simple

    port = int(sys.argv[1])
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        "127.0.0.1",
        port,
        _task_state_hook(_hooks(app)),
        threaded=True,
        request_handler=server.MotoRequestHandler,
    )


if __name__ == "__main__":
    main()

"""Sets up ECS scenarios in moto for tests/it/ecs.rs and the poll benchmark.

Usage: python3 tests/it/ecs_fixture.py ENDPOINT < steps.json
Reads a JSON list of steps, runs them in order, prints a JSON list with one
result per step. Steps ({"op": ..., ...}):
  network                              -> {"subnet", "sg"}
  cluster     name                     -> {"arn"}
  instance    cluster subnet           -> {"instance_id", "ip", "container_instance"}
  taskdef     family mode ports[{container, host?, name?, protocol?}] health?
                                       -> {"arn"}
  run         cluster taskdef count? group? tags? launch_type? subnet? sg?
                                       -> {"tasks": [{"arn", "id", "ip"?, "container_instance"?}]}
  stop        cluster task             -> {}
  deregister  cluster container_instance -> {}
  drain       cluster container_instance -> {}
  activate    cluster container_instance -> {}  back to ACTIVE
  instance_event cluster container_instance version agent_connected? -> {}
              the ECS Container Instance State Change event ECS would send for
              the container instance as it is now (DescribeContainerInstances'
              shape; `agent_connected` overrides its agentConnected), put
              through EventBridge
  bulk        cluster subnet tasks per_instance? per_service? families?
              N bridge tasks (dynamic ports) on N/per_instance instances, in
              services of per_service tasks, over `families` task definitions
                                       -> {"instances", "tasks"}
  queue       name rule? target?       -> {"url", "arn"}
              an SQS queue and an EventBridge rule (source aws.ecs; named
              `rule`, default the queue's name) with the queue as target
              `target` (default "ecs-dns"): one rule, one target per replica
  event       cluster task version     -> {}
              the ECS Task State Change event ECS would send for the task as
              it is now (DescribeTasks' shape, no healthStatus, no tags), put
              through EventBridge (PutEvents)
  events      cluster tasks[] version  -> {}  the same for several tasks, 10 a PutEvents
  foreign_event cluster task version url account? region? -> {}
              the same event as EventBridge delivers it (the envelope), as if
              from another account and/or region: the envelope and the
              cluster, task and container ARNs name them; sent straight into
              the queue at `url` (moto's PutEvents stamps its own account),
              on another moto with `queue_endpoint` (and `queue_region`)
  stack_rule  name clusters            -> {"url", "pattern"}
              an SQS queue and a rule whose pattern is the EventsRule's of
              docker/cloudformation.yaml, resolved as CloudFormation would
              with ServedClusters = `clusters`
  raw_event   cluster_arn detail_type  -> {}  a bare aws.ecs event of that cluster
  message     url body                 -> {}  any body, straight into the queue
  unqueue     url                      -> {}  deletes the queue
  pending     url                      -> {"messages"}  visible + in flight
"""

import datetime
import json
import os
import sys
import uuid

import boto3

# ECS_FIXTURE_REGION and ECS_FIXTURE_ROLE (a role ARN, assumed first: moto
# then keeps what is made in the role's account) set up another account and
# region, for tests of several sources.
REGION = os.environ.get("ECS_FIXTURE_REGION", "us-east-1")
# moto's default account: the one its ARNs name.
ACCOUNT = "123456789012"


ENDPOINT = None


CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


def client(service):
    return boto3.client(service, endpoint_url=ENDPOINT, region_name=REGION, **CREDENTIALS)


def assume_role(arn):
    global CREDENTIALS
    sts = client("sts")
    got = sts.assume_role(RoleArn=arn, RoleSessionName="ecs-fixture")["Credentials"]
    CREDENTIALS = {
        "aws_access_key_id": got["AccessKeyId"],
        "aws_secret_access_key": got["SecretAccessKey"],
        "aws_session_token": got["SessionToken"],
    }


def clients(endpoint):
    global ENDPOINT
    ENDPOINT = endpoint
    if os.environ.get("ECS_FIXTURE_ROLE"):
        assume_role(os.environ["ECS_FIXTURE_ROLE"])
    return client("ecs"), client("ec2")


def task_event(ecs, cluster, task, version):
    """The event ECS sends on a task's state change: the task as
    DescribeTasks shows it, less what events do not carry."""
    described = ecs.describe_tasks(cluster=cluster, tasks=[task])["tasks"][0]
    for missing in ("healthStatus", "tags"):
        described.pop(missing, None)
    described["version"] = version
    return {
        "Source": "aws.ecs",
        "DetailType": "ECS Task State Change",
        "Resources": [described["taskArn"]],
        "Detail": json.dumps(described, default=str),
    }


def run_step(ecs, ec2, step):
    op = step["op"]
    if op == "network":
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        # moto's awsvpc RunTask needs DNS hostnames on (it reads the ENI's DNS name).
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/18")["Subnet"]["SubnetId"]
        sg = ec2.create_security_group(GroupName="ecs-dns-test", Description="test", VpcId=vpc)["GroupId"]
        return {"subnet": subnet, "sg": sg}
    if op == "cluster":
        return {"arn": ecs.create_cluster(clusterName=step["name"])["cluster"]["clusterArn"]}
    if op == "instance":
        image = ec2.describe_images()["Images"][0]["ImageId"]
        # SubnetId: without it moto's private IPs are outside any subnet.
        instance = ec2.run_instances(
            ImageId=image, MinCount=1, MaxCount=1, InstanceType="m5.large", SubnetId=step["subnet"]
        )["Instances"][0]
        document = json.dumps({"instanceId": instance["InstanceId"]})
        registered = ecs.register_container_instance(
            cluster=step["cluster"], instanceIdentityDocument=document
        )["containerInstance"]
        return {
            "instance_id": instance["InstanceId"],
            "ip": instance["PrivateIpAddress"],
            "container_instance": registered["containerInstanceArn"],
        }
    if op == "taskdef":
        mappings = []
        for port in step.get("ports", []):
            mapping = {"containerPort": port["container"], "protocol": port.get("protocol", "tcp")}
            if "host" in port:
                mapping["hostPort"] = port["host"]
            if "name" in port:
                mapping["name"] = port["name"]
            mappings.append(mapping)
        container = {
            "name": step.get("container", "app"),
            "image": "example/app:1",
            "memory": 64,  # about 116 tasks per moto instance (7482 MiB)
            "cpu": 1,
            "essential": True,
            "portMappings": mappings,
        }
        if step.get("health"):
            container["healthCheck"] = {"command": ["CMD", "true"]}
        definition = ecs.register_task_definition(
            family=step["family"], networkMode=step.get("mode", "bridge"), containerDefinitions=[container]
        )["taskDefinition"]
        return {"arn": definition["taskDefinitionArn"]}
    if op == "run":
        args = dict(cluster=step["cluster"], taskDefinition=step["taskdef"], count=step.get("count", 1))
        if "group" in step:
            args["group"] = step["group"]
        if "tags" in step:
            args["tags"] = [{"key": k, "value": v} for k, v in step["tags"].items()]
        if "launch_type" in step:
            args["launchType"] = step["launch_type"]
        if "subnet" in step:
            # awsvpc needs securityGroups, or moto answers 500.
            args["networkConfiguration"] = {
                "awsvpcConfiguration": {"subnets": [step["subnet"]], "securityGroups": [step["sg"]]}
            }
        tasks = []
        remaining = args["count"]
        while remaining > 0:
            # RunTask starts at most 10 tasks per call.
            args["count"] = min(remaining, 10)
            started = ecs.run_task(**args)["tasks"]
            if not started:
                raise SystemExit(f"run_task placed no task: {step}")
            remaining -= len(started)
            for task in started:
                entry = {"arn": task["taskArn"], "id": task["taskArn"].split("/")[-1]}
                if task.get("containerInstanceArn"):
                    entry["container_instance"] = task["containerInstanceArn"]
                for attachment in task.get("attachments", []):
                    for detail in attachment.get("details", []):
                        if detail["name"] == "privateIPv4Address":
                            entry["ip"] = detail["value"]
                tasks.append(entry)
        return {"tasks": tasks}
    if op == "stop":
        ecs.stop_task(cluster=step["cluster"], task=step["task"], reason="test")
        return {}
    if op == "deregister":
        ecs.deregister_container_instance(
            cluster=step["cluster"], containerInstance=step["container_instance"], force=True
        )
        return {}
    if op == "drain":
        ecs.update_container_instances_state(
            cluster=step["cluster"], containerInstances=[step["container_instance"]], status="DRAINING"
        )
        return {}
    if op == "activate":
        ecs.update_container_instances_state(
            cluster=step["cluster"], containerInstances=[step["container_instance"]], status="ACTIVE"
        )
        return {}
    if op == "instance_event":
        described = ecs.describe_container_instances(
            cluster=step["cluster"], containerInstances=[step["container_instance"]]
        )["containerInstances"][0]
        cluster_arn = ecs.describe_clusters(clusters=[step["cluster"]])["clusters"][0]["clusterArn"]
        detail = {
            "clusterArn": cluster_arn,
            "containerInstanceArn": described["containerInstanceArn"],
            "ec2InstanceId": described.get("ec2InstanceId"),
            "status": described["status"],
            "agentConnected": step.get("agent_connected", described.get("agentConnected", True)),
            "registeredResources": described.get("registeredResources", []),
            "remainingResources": described.get("remainingResources", []),
            "attributes": described.get("attributes", []),
            "versionInfo": described.get("versionInfo", {}),
            "version": step["version"],
        }
        entry = {
            "Source": "aws.ecs",
            "DetailType": "ECS Container Instance State Change",
            "Resources": [described["containerInstanceArn"]],
            "Detail": json.dumps(detail, default=str),
        }
        result = client("events").put_events(Entries=[entry])
        if result.get("FailedEntryCount"):
            raise SystemExit(f"put_events failed: {result}")
        return {}
    if op == "bulk":
        return bulk(ecs, ec2, step)
    if op == "queue":
        sqs, events = client("sqs"), client("events")
        url = sqs.create_queue(QueueName=step["name"])["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        rule = step.get("rule", step["name"])
        events.put_rule(Name=rule, EventPattern=json.dumps({"source": ["aws.ecs"]}))
        events.put_targets(Rule=rule, Targets=[{"Id": step.get("target", "ecs-dns"), "Arn": arn}])
        return {"url": url, "arn": arn}
    if op == "event":
        entry = task_event(ecs, step["cluster"], step["task"], step["version"])
        result = client("events").put_events(Entries=[entry])
        if result.get("FailedEntryCount"):
            raise SystemExit(f"put_events failed: {result}")
        return {}
    if op == "events":
        entries = [task_event(ecs, step["cluster"], task, step["version"]) for task in step["tasks"]]
        for i in range(0, len(entries), 10):
            result = client("events").put_events(Entries=entries[i:i + 10])
            if result.get("FailedEntryCount"):
                raise SystemExit(f"put_events failed: {result}")
        return {}
    if op == "foreign_event":
        entry = task_event(ecs, step["cluster"], step["task"], step["version"])
        detail = json.loads(entry["Detail"])
        account, region = step.get("account", ACCOUNT), step.get("region", REGION)

        def moved(arn):
            return arn.replace(f":{REGION}:{ACCOUNT}:", f":{region}:{account}:")

        # The task definition's ARN is left as moto knows it, so that an
        # event that is not refused is applied (and served).
        for key in ("clusterArn", "taskArn", "containerInstanceArn"):
            if key in detail:
                detail[key] = moved(detail[key])
        for container in detail.get("containers", []):
            for key in ("containerArn", "taskArn"):
                if key in container:
                    container[key] = moved(container[key])
        body = {
            "version": "0", "id": str(uuid.uuid4()), "detail-type": entry["DetailType"],
            "source": "aws.ecs", "account": account, "region": region,
            "time": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "resources": [detail["taskArn"]], "detail": detail,
        }
        sqs = client("sqs")
        if "queue_endpoint" in step:
            # A central queue elsewhere (another moto), read as its owner.
            sqs = boto3.client("sqs", endpoint_url=step["queue_endpoint"],
                               region_name=step.get("queue_region", REGION),
                               aws_access_key_id="test", aws_secret_access_key="test")
        sqs.send_message(QueueUrl=step["url"], MessageBody=json.dumps(body))
        return {}
    if op == "stack_rule":
        pattern = stack_events_pattern({"ServedClusters": step["clusters"], "EventsMode": "true"})
        sqs, events = client("sqs"), client("events")
        url = sqs.create_queue(QueueName=step["name"])["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name=step["name"], EventPattern=pattern)
        events.put_targets(Rule=step["name"], Targets=[{"Id": "ecs-dns", "Arn": arn}])
        return {"url": url, "pattern": pattern}
    if op == "raw_event":
        detail = {"clusterArn": step["cluster_arn"], "status": "DRAINING", "version": 1}
        result = client("events").put_events(Entries=[{
            "Source": "aws.ecs", "DetailType": step["detail_type"],
            "Resources": [], "Detail": json.dumps(detail),
        }])
        if result.get("FailedEntryCount"):
            raise SystemExit(f"put_events failed: {result}")
        return {}
    if op == "unqueue":
        client("sqs").delete_queue(QueueUrl=step["url"])
        return {}
    if op == "message":
        client("sqs").send_message(QueueUrl=step["url"], MessageBody=step["body"])
        return {}
    if op == "pending":
        attributes = client("sqs").get_queue_attributes(
            QueueUrl=step["url"],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return {"messages": int(attributes["ApproximateNumberOfMessages"])
                + int(attributes["ApproximateNumberOfMessagesNotVisible"])}
    raise SystemExit(f"unknown step {op!r}")


def stack_events_pattern(parameters):
    """The EventPattern of the EventsRule in docker/cloudformation.yaml, as
    CloudFormation resolves it for `parameters` (the intrinsic functions it
    uses: Ref, Fn::If on its conditions, Fn::Equals, Fn::Not, Fn::Sub,
    Fn::Join, Fn::Split), as JSON text for PutRule."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def tagged(loader, suffix, node):
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {"Ref": value} if suffix == "Ref" else {f"Fn::{suffix}": value}

    Loader.add_multi_constructor("!", tagged)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../docker/cloudformation.yaml")
    with open(path) as f:
        template = yaml.load(f, Loader=Loader)
    values = {name: spec.get("Default") for name, spec in template["Parameters"].items()}
    values.update(parameters)
    values.update({"AWS::Region": REGION, "AWS::AccountId": "123456789012", "AWS::Partition": "aws"})

    def resolve(node):
        if isinstance(node, list):
            return [resolve(n) for n in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, value), = node.items()
            if key == "Ref":
                return values[value]
            if key == "Fn::If":
                name, then, otherwise = value
                return resolve(then if resolve(template["Conditions"][name]) else otherwise)
            if key == "Fn::Equals":
                left, right = resolve(value)
                return left == right
            if key == "Fn::Not":
                return not resolve(value[0])
            if key == "Fn::Join":
                return value[0].join(resolve(value[1]))
            if key == "Fn::Split":
                return resolve(value[1]).split(value[0])
            if key == "Fn::Sub":
                text, names = (value, {}) if isinstance(value, str) else value
                scope = dict(values, **{k: resolve(v) for k, v in names.items()})
                for name, replacement in scope.items():
                    text = text.replace("${" + name + "}", str(replacement))
                return text
        return {k: resolve(v) for k, v in node.items()}

    rule = template["Resources"]["EventsRule"]["Properties"]["EventPattern"]
    pattern = resolve(rule)
    # JSON text is what CloudFormation passes on; an object, serialised.
    return pattern if isinstance(pattern, str) else json.dumps(pattern)


def bulk(ecs, ec2, step):
    cluster, total = step["cluster"], step["tasks"]
    per_instance = step.get("per_instance", 100)
    per_service = step.get("per_service", 10)
    families = step.get("families", 5)
    ecs.create_cluster(clusterName=cluster)
    instances = max(1, -(-total // per_instance))
    for _ in range(instances):
        run_step(ecs, ec2, {"op": "instance", "cluster": cluster, "subnet": step["subnet"]})
    defs = [
        run_step(
            ecs,
            ec2,
            {"op": "taskdef", "family": f"app{i}", "ports": [{"container": 8080, "host": 0, "name": "http"}]},
        )["arn"]
        for i in range(families)
    ]
    started = 0
    service = 0
    while started < total:
        count = min(per_service, total - started)
        run_step(
            ecs,
            ec2,
            {
                "op": "run",
                "cluster": cluster,
                "taskdef": defs[service % families],
                "count": count,
                "group": f"service:svc{service}",
            },
        )
        started += count
        service += 1
    return {"instances": instances, "tasks": started}


def main():
    ecs, ec2 = clients(sys.argv[1])
    steps = json.load(sys.stdin)
    print(json.dumps([run_step(ecs, ec2, step) for step in steps]))


if __name__ == "__main__":
    main()

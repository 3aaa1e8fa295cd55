"""EKS shim for the moto AWS emulator: the EKS calls moto lacks, served here.

Terrace's integration tests run the real Terraform and the real hashicorp/aws
provider against moto (../../../shared/STACK.md). moto 5.1.x (and 5.2.x and
LocalStack's moto-ext fork, checked 2026-11) has no EKS access entries, pod
identity associations or managed add-ons, and its DescribeCluster and
DescribeNodegroup answers differ from real EKS in ways a re-plan shows as
drift. LocalStack's EKS needs its paid edition and a container runtime, and the
fakecloud crate does not build in CI's time; so this small proxy sits in front
of moto, serves only those calls itself and forwards every other request to
moto byte for byte (method, path, headers including the SigV4 Authorization,
body), so moto keeps telling accounts apart by access key.

Gaps found by running the rendered stack through Terraform, and how each is
filled:

1. Access entries (Create/Describe/Update/Delete/List AccessEntry,
   Associate/List/Disassociate AccessPolicy): served from memory. moto answers
   404 with an HTML body, which the provider reports as "invalid character '<'".
2. Pod identity associations (Create/Describe/Update/Delete/List): served from
   memory, including the ones an add-on's `podIdentityAssociations` creates
   (owned by the add-on, removed with it, as EKS does).
3. Managed add-ons (Create/Describe/Update/Delete/List Addon,
   DescribeAddonVersions): served from memory; every add-on is ACTIVE at once,
   at the version asked for (else a fixed one per add-on name);
   DescribeAddonVersions lists one build per Kubernetes version, each the
   default for its own version and compatible with the next one.
4. DescribeCluster has no `accessConfig`: the shim returns the
   authenticationMode the cluster was created with (real EKS does not echo
   bootstrapClusterCreatorAdminPermissions either).
5. DescribeCluster has no `resourcesVpcConfig.clusterSecurityGroupId` or
   `vpcId`: real EKS creates a cluster security group; without one, anything
   that tags it (aws_ec2_tag) fails with "The ID '' is not valid". On the
   first describe the shim looks up the VPC of the cluster's subnets and
   creates `eks-cluster-sg-<name>-<n>` in it through moto's EC2 API, tagged
   like EKS tags it; DeleteCluster deletes that group, as EKS does, so the
   VPC can then be destroyed.
6. DescribeNodegroup invents `remoteAccess` (an SSH key and source groups)
   that was never asked for, and omits `updateConfig`: remoteAccess is removed
   when the node group was created without it, and updateConfig is returned
   as it was created.
7. DeleteCluster leaves nothing of the above behind: the cluster's access
   entries, associations and add-ons go with it.
8. EC2 DescribeLaunchTemplateVersions lists the tags CreateLaunchTemplate put
   on the template itself (resource type `launch-template`, which the provider
   sends from default_tags) among the template data's tag specifications;
   real EC2 does not, and the provider plans to remove them on every run. The
   shim drops that one item from the answer.

9. DescribeCluster's `certificateAuthority.data` is random base64, not a
   certificate, so no Kubernetes client can be built from it: the shim
   returns TEST_CA below instead (a self-signed certificate made for these
   tests; its key was thrown away). The endpoint stays moto's, a hostname
   that does not resolve: an emulated cluster has no API server, and
   Terrace must say so clearly.

10. moto enforces a bucket policy's Deny statements without evaluating
   their Condition, so the state bucket's TLS-only policy (Deny when
   aws:SecureTransport is false) locks every object call out over moto's
   plain HTTP, Terraform's state included. The shim keeps bucket policies
   itself (Put/Get/DeleteBucketPolicy) and never hands them to moto.

11. EC2 refuses to delete a subnet, security group or VPC that something
   still uses (DependencyViolation); moto 5.1 deletes them anyway, which
   hides every teardown-ordering bug (and keeps the interfaces of
   terminated instances and deleted NAT gateways, which EC2 deletes: those
   are not counted). The shim checks what EC2 checks
   before it forwards DeleteSubnet (network interfaces, instances that are
   not terminated, NAT gateways that are not deleted), DeleteSecurityGroup
   (interfaces and instances in the group, rules of other groups that refer
   to it) and DeleteVpc (subnets, groups other than `default`, route tables
   other than the main one, attached internet gateways, NAT gateways,
   interfaces), and answers DependencyViolation as EC2 does.

12. moto creates no network interfaces for a load balancer. A real
   ELBv2 load balancer has one per subnet (described `ELB app/<name>/<id>`,
   in its security groups, untagged), which block its subnets and groups
   until it is deleted, and go away with it. The shim creates them after
   CreateLoadBalancer and deletes them after DeleteLoadBalancer.

13. A deleted NAT gateway gives up its elastic IP on EC2; moto marks the
   gateway deleted and leaves the address associated with its interface,
   so a NAT gateway created again with that address fails
   (Resource.AlreadyAssociated) where EC2 would succeed. The shim
   disassociates the gateway's addresses after DeleteNatGateway.

14. Replacing a cluster's KMS key (after an apply was killed while it
   created the key, say) moves the key's alias and the log groups it
   encrypts to the new key. moto 5.1's KMS UpdateAlias fails with a 500
   (it deletes the alias, then looks it up to move it), and its CloudWatch
   Logs has no AssociateKmsKey or DisassociateKmsKey (500,
   NotImplementedError); the provider retries either for twenty minutes.
   The shim serves UpdateAlias as moto's DeleteAlias then CreateAlias, and
   keeps each log group's association itself: it answers Associate and
   DisassociateKmsKey, and writes the association into DescribeLogGroups
   answers until the group is created or deleted again.

Test control (not a gap): `POST /_shim/deny-region` with `{"access_key":
KEY, "region": R, "deny": true|false}` makes every request that account
signs for region R fail as an SCP denying the region does (AccessDenied),
so a test can make one region unreadable and leave the others alone.

Test control (not a gap): `POST /_shim/endpoint` with `{"access_key": KEY,
"cluster": NAME, "endpoint": URL}` makes DescribeCluster answer URL as the
API endpoint of that account's cluster, so a test can put a real HTTP server (one that refuses every
caller, say) behind an emulated cluster.

Not a gap: of the ~55 s a full apply takes against moto, ~50 s are the
provider's own consistency waits (the SQS queue and its policy wait ~25 s
each for their attributes to read back the same several times in a row).

State is in memory, keyed by access key id (moto's account) and region, and
dies with the process. A request this shim cannot parse is forwarded to moto
unchanged, so its answer (usually a 404) is what the caller sees.

Run:  python3 eks_shim.py --upstream http://127.0.0.1:PORT [--port 0]
Prints "listening on <port>" on stdout once it accepts connections.
Standard library only.
"""

import argparse
import base64
import http.client
import json
import random
import re
import string
import sys
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFAULT_ADDON_VERSIONS = {
    "vpc-cni": "v1.19.5-eksbuild.1",
    "kube-proxy": "v1.33.0-eksbuild.2",
    "coredns": "v1.12.1-eksbuild.2",
    "eks-pod-identity-agent": "v1.3.7-eksbuild.2",
    "aws-ebs-csi-driver": "v1.44.0-eksbuild.1",
    "metrics-server": "v0.8.0-eksbuild.1",
}

# The Kubernetes versions DescribeAddonVersions knows.
ADDON_CLUSTER_VERSIONS = ("1.32", "1.33", "1.34", "1.35")


def addon_version_list(name):
    """The versions of add-on `name`, newest first, shaped as EKS lists them:
    build N is the default for the N-th Kubernetes version and also
    compatible with the next one, where it is not the default. So the
    default for 1.33 is eksbuild.2, for 1.34 eksbuild.3, and a version filter
    still lists a compatible older build, which a client must not pick."""
    base = DEFAULT_ADDON_VERSIONS.get(name, "v1.0.0-eksbuild.1").split("-eksbuild")[0]
    versions = []
    for n, cluster in enumerate(ADDON_CLUSTER_VERSIONS, start=1):
        compatible = [{"clusterVersion": cluster, "platformVersions": ["*"], "defaultVersion": True}]
        if n < len(ADDON_CLUSTER_VERSIONS):
            compatible.append(
                {"clusterVersion": ADDON_CLUSTER_VERSIONS[n], "platformVersions": ["*"], "defaultVersion": False}
            )
        versions.append({
            "addonVersion": f"{base}-eksbuild.{n}",
            "architecture": ["amd64", "arm64"],
            "compatibilities": compatible,
            "requiresConfiguration": False,
            "requiresIamPermissions": name in ("vpc-cni", "aws-ebs-csi-driver"),
        })
    return list(reversed(versions))


# The tags a CreateLaunchTemplate puts on the template itself, which moto
# wrongly reports as part of the template's data (gap 8).
LAUNCH_TEMPLATE_TAGS = re.compile(
    rb"<item><resourceType>launch-template</resourceType><tagSet>.*?</tagSet></item>"
)

CREDENTIAL = re.compile(r"Credential=([^/]+)/[^/]+/([^/]+)/([^/]+)/aws4_request")


class NotFound(Exception):
    pass


class Conflict(Exception):
    pass


class Store:
    """Everything the shim serves itself, for one (access key, region)."""

    def __init__(self):
        self.access_entries = {}  # (cluster, principal) -> entry
        self.policies = {}  # (cluster, principal) -> {policyArn: association}
        self.pod_identity = {}  # (cluster, id) -> association
        self.addons = {}  # (cluster, name) -> addon
        self.clusters = {}  # cluster -> {"access": {...}, "sg": id, "vpc": id}
        self.nodegroups = {}  # (cluster, name) -> create request body


STORES = {}
LOCK = threading.Lock()
BUCKET_POLICIES = {}  # bucket name -> policy document (bytes); S3 names are global
LB_INTERFACES = {}  # load balancer ARN -> the ENI ids made for it (gap 12)
ENDPOINTS = {}  # (access key, cluster name) -> API endpoint a test asked for
DENIED_REGIONS = set()  # (access key, region) a test made unreadable
LOG_GROUP_KEYS = {}  # (access key, region, log group) -> KMS key ARN or None (gap 14)

XMLNS = re.compile(r'\sxmlns="[^"]+"')
LIVE_INSTANCE_STATES = ("pending", "running", "stopping", "stopped", "shutting-down")


def xml_root(text):
    """An EC2 or ELB answer without its default namespace."""
    return ET.fromstring(XMLNS.sub("", text, count=1))


def filters(**named):
    """EC2 query parameters for filters: name (underscores as dashes) -> values."""
    params = {}
    for i, (name, values) in enumerate(named.items(), 1):
        params[f"Filter.{i}.Name"] = name.replace("_", "-").replace("-dot-", ".")
        for j, value in enumerate(values, 1):
            params[f"Filter.{i}.Value.{j}"] = value
    return params


TEST_CA = """\
-----BEGIN CERTIFICATE-----
MIIDHzCCAgegAwIBAgIULRdxKMHowW5pZRExUdEOTkRAovAwDQYJKoZIhvcNAQEL
BQAwHjEcMBoGA1UEAwwTdGVycmFjZS10ZXN0LWVrcy1jYTAgFw0yNjExMjYxNzMx
NDdaGA8yMTI2MTEwMjE3MzE0N1owHjEcMBoGA1UEAwwTdGVycmFjZS10ZXN0LWVr
cy1jYTCCASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEBALg16F7/T7V/FJVi
ygg+T2Wik1XXFqIJGxc0hQqELZqX/cCCTNoGpSq7/+wrVmoBxsp5XU0MV7OiGyMB
SpiJxvqXlH/uXG9n/BYwc23BhzOwiFFaQp4NaRak3xICzf1kzjVCnX+RkiW9UPeH
gbeEmuTYE1v5acoQ4A6PomLDR5d+gq+Ie0ob43U/x+/7qeT3fmuCpRdWv72AkB2X
skcc6LuMgEa1k23O6dvknoBGcnJBQxxo3Ad4gw8ahEiPFqtQ1XKu+fOD/qKBgJDi
uL97dqPmZqa+am2GJP2QGqKqdyHBE912WmrdpwLnQsp1Je1nAyfJqMzC65mIcfll
wV5tIUECAwEAAaNTMFEwHQYDVR0OBBYEFNFhE6LLKzADxXrcLUbnpSkpaQ95MB8G
A1UdIwQYMBaAFNFhE6LLKzADxXrcLUbnpSkpaQ95MA8GA1UdEwEB/wQFMAMBAf8w
DQYJKoZIhvcNAQELBQADggEBAKFzjUMXEMl7LEqMb4dAl2riM1zm1NIUX5dOz6N4
9h9nn+G9/D3GDRu57mN5juLTXvBNVYA9pSYh3O5m2CIQwv0gA+3Pg1yTCIMP+tqn
A7VGRpimslOK+yGAXQ1OzkW3IE8NLXcaimtEExd+TL6KTsd/Kq0dp4CMzxAqtNgJ
zYzggJD6lybyzcTs5We7whJcGEI0b20dTdZJAMXckRFVnilvuRbaHIVXHxa0H4G6
Lcnebp1LZk6LKyMz9Yl/sZmZuPPMCAkR9ij5KpfIYg5msjJj+InQoqBctXxyi6Uh
x21pnWugcGCY53MVJ8TmLwi9zFo4VNFqRSv5XL4O5ZM0c3A=
-----END CERTIFICATE-----
"""

def store_for(key):
    with LOCK:
        return STORES.setdefault(key, Store())


def now():
    return time.time()


def suffix(n, alphabet=string.ascii_lowercase + string.digits):
    return "".join(random.choice(alphabet) for _ in range(n))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream = None  # (host, port), set in main

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("eks-shim: " + (fmt % args) + "\n")

    # -- plumbing -------------------------------------------------------

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip(), 16)
                chunk = self.rfile.read(size + 2)
                chunks.append(line + chunk)
                if size == 0:
                    # Trailers end with an empty line.
                    while True:
                        trailer = self.rfile.readline()
                        chunks.append(trailer)
                        if trailer in (b"\r\n", b"\n", b""):
                            break
                    return b"".join(chunks), True
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b"", False

    def upstream_call(self, method, path, headers, body):
        conn = http.client.HTTPConnection(*self.upstream, timeout=120)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                conn.putheader(name, value)
            conn.endheaders()
            if body:
                conn.send(body)
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        finally:
            conn.close()

    def forward(self, body):
        status, headers, data = self.upstream_call(
            self.command, self.path, self.headers.items(), body
        )
        self.send(status, data, headers)

    def send(self, status, data, headers=()):
        self.send_response_only(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_json(self, status, obj):
        self.send(
            status,
            json.dumps(obj).encode(),
            [("Content-Type", "application/json"), ("x-amzn-RequestId", suffix(32))],
        )
        return True

    def send_error_json(self, status, kind, message):
        self.send(
            status,
            json.dumps({"__type": kind, "message": message}).encode(),
            [
                ("Content-Type", "application/json"),
                ("x-amzn-ErrorType", kind),
                ("x-amzn-RequestId", suffix(32)),
            ],
        )

    def moto_json(self, method, path, body=b"", target=None):
        """A JSON call to moto with the caller's own headers (same account):
        EKS's REST calls, or with `target` an operation of a JSON-protocol
        service (KMS, CloudWatch Logs)."""
        headers = [
            (k, v)
            for k, v in self.headers.items()
            if k.lower() not in ("content-length", "transfer-encoding", "content-type", "x-amz-target")
        ]
        headers.append(("Content-Length", str(len(body))))
        if body:
            headers.append(("Content-Type", "application/json"))
        if target:
            headers.append(("X-Amz-Target", target))
        status, _, data = self.upstream_call(method, path, headers, body)
        return status, (json.loads(data) if data.strip().startswith(b"{") else {})

    def ec2(self, params):
        """An EC2 query call to moto as the caller's account. moto does not
        verify signatures; it reads the access key and service from the
        credential scope."""
        access_key, region = self.ident
        scope = f"{access_key}/{time.strftime('%Y%m%d', time.gmtime())}/{region}/ec2/aws4_request"
        body = urllib.parse.urlencode({"Version": "2016-11-15", **params}).encode()
        headers = [
            ("Host", "ec2.%s.amazonaws.com" % region),
            ("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"),
            ("Authorization", f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=host, Signature=0"),
            ("Content-Length", str(len(body))),
        ]
        token = self.headers.get("X-Amz-Security-Token")
        if token:
            headers.append(("X-Amz-Security-Token", token))
        status, _, data = self.upstream_call("POST", "/", headers, body)
        return status, data.decode()

    def bucket_policy(self, body):
        """Serves Put/Get/DeleteBucketPolicy (gap 10); forgets a deleted
        bucket's policy. True when the request was answered here."""
        url = urllib.parse.urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        if len(parts) != 1:
            return False
        bucket = parts[0]
        if "policy" not in query:
            if self.command == "DELETE" and not query:
                with LOCK:
                    BUCKET_POLICIES.pop(bucket, None)
            return False
        if self.command == "PUT":
            json.loads(body)
            with LOCK:
                BUCKET_POLICIES[bucket] = body
            self.send(204, b"")
        elif self.command == "GET":
            with LOCK:
                policy = BUCKET_POLICIES.get(bucket)
            if policy is None:
                error = (
                    '<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchBucketPolicy</Code>'
                    f"<Message>The bucket policy does not exist</Message><BucketName>{bucket}</BucketName></Error>"
                ).encode()
                self.send(404, error, [("Content-Type", "application/xml")])
            else:
                self.send(200, policy, [("Content-Type", "application/json")])
        elif self.command == "DELETE":
            with LOCK:
                BUCKET_POLICIES.pop(bucket, None)
            self.send(204, b"")
        else:
            return False
        return True

    # -- EC2 dependencies (gaps 11 and 12) -------------------------------

    def ec2_items(self, action, path, **named):
        """The items of a Describe* answer (an empty list if moto refused)."""
        status, text = self.ec2({"Action": action, **filters(**named)})
        if status != 200:
            sys.stderr.write(f"eks-shim: {action} answered {status}: {text[:300]}\n")
            return []
        return xml_root(text).findall(path)

    def interfaces(self, **named):
        """Interfaces that exist on EC2. moto keeps the primary interface of
        a terminated instance and the interface of a deleted NAT gateway;
        EC2 deletes both with their owner, so they do not count."""
        found = self.ec2_items("DescribeNetworkInterfaces", "networkInterfaceSet/item", **named)
        if not found:
            return []
        orphaned = {
            eni.text
            for nat in self.ec2_items("DescribeNatGateways", "natGatewaySet/item")
            if nat.findtext("state") in ("deleted", "failed")
            for eni in nat.findall("natGatewayAddressSet/item/networkInterfaceId")
        }
        live = []
        for eni in found:
            eni_id = eni.findtext("networkInterfaceId")
            instance = eni.findtext("attachment/instanceId")
            if eni_id in orphaned or (instance and not self.live_instances(instance_id=[instance])):
                continue
            live.append(eni_id)
        return live

    def live_instances(self, **named):
        found = self.ec2_items("DescribeInstances", "reservationSet/item/instancesSet/item", **named)
        return [
            i.findtext("instanceId")
            for i in found
            if i.findtext("instanceState/name") in LIVE_INSTANCE_STATES
        ]

    def live_nat_gateways(self, **named):
        found = self.ec2_items("DescribeNatGateways", "natGatewaySet/item", **named)
        return [n.findtext("natGatewayId") for n in found if n.findtext("state") not in ("deleted", "failed")]

    def subnet_dependencies(self, subnet):
        return (
            self.interfaces(subnet_id=[subnet])
            + self.live_instances(subnet_id=[subnet])
            + self.live_nat_gateways(subnet_id=[subnet])
        )

    def group_dependencies(self, group):
        users = self.interfaces(group_id=[group]) + self.live_instances(instance_dot_group_id=[group])
        for other in self.ec2_items("DescribeSecurityGroups", "securityGroupInfo/item"):
            holder = other.findtext("groupId")
            if holder == group:
                continue
            for rules in ("ipPermissions", "ipPermissionsEgress"):
                referenced = other.findall(f"{rules}/item/groups/item/groupId")
                if any(r.text == group for r in referenced):
                    users.append(holder)
        return users

    def vpc_dependencies(self, vpc):
        subnets = [s.findtext("subnetId") for s in self.ec2_items("DescribeSubnets", "subnetSet/item", vpc_id=[vpc])]
        groups = [
            g.findtext("groupId")
            for g in self.ec2_items("DescribeSecurityGroups", "securityGroupInfo/item", vpc_id=[vpc])
            if g.findtext("groupName") != "default"
        ]
        tables = [
            t.findtext("routeTableId")
            for t in self.ec2_items("DescribeRouteTables", "routeTableSet/item", vpc_id=[vpc])
            if not any(m.text == "true" for m in t.findall("associationSet/item/main"))
        ]
        gateways = [
            g.findtext("internetGatewayId")
            for g in self.ec2_items("DescribeInternetGateways", "internetGatewaySet/item", attachment_dot_vpc_id=[vpc])
        ]
        return (
            subnets
            + groups
            + tables
            + gateways
            + self.live_nat_gateways(vpc_id=[vpc])
            + self.interfaces(vpc_id=[vpc])
        )

    def deny_region(self, region, service):
        message = f"Access to region {region} is denied by a service control policy"
        if service in ("ec2", "sts", "iam", "elasticloadbalancing"):
            error = (
                '<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>UnauthorizedOperation</Code>'
                f"<Message>{message}</Message></Error></Errors><RequestID>{suffix(32)}</RequestID></Response>"
            ).encode()
            return self.send(403, error, [("Content-Type", "text/xml")])
        return self.send_error_json(403, "AccessDeniedException", message)

    def refuse_in_use(self, action, params, body):
        check, key, what = DEPENDENCY_CHECKS[action]
        resource = params.get(key)
        users = [u for u in check(self, resource) if u] if resource else []
        if not users:
            return self.forward(body)
        message = f"The {what} '{resource}' has dependencies and cannot be deleted: {', '.join(sorted(set(users)))}"
        error = (
            '<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>DependencyViolation</Code>'
            f"<Message>{message}</Message></Error></Errors><RequestID>{suffix(32)}</RequestID></Response>"
        ).encode()
        self.send(400, error, [("Content-Type", "text/xml")])

    def load_balancer_interfaces(self, action, params, body):
        status, headers, data = self.upstream_call(self.command, self.path, self.headers.items(), body)
        if status == 200 and action == "CreateLoadBalancer":
            root = xml_root(data.decode())
            arn = root.findtext(".//LoadBalancerArn")
            subnets = [v for k, v in sorted(params.items()) if k.startswith("Subnets.member.")]
            groups = [v for k, v in sorted(params.items()) if k.startswith("SecurityGroups.member.")]
            kind = "net" if params.get("Type") == "network" else "app"
            description = f"ELB {kind}/{arn.split('/', 2)[-1]}" if arn else "ELB"
            made = []
            for subnet in subnets:
                request = {"Action": "CreateNetworkInterface", "SubnetId": subnet, "Description": description}
                for i, group in enumerate(groups, 1):
                    request[f"SecurityGroupId.{i}"] = group
                created, xml = self.ec2(request)
                eni = re.search(r"<networkInterfaceId>([^<]+)</networkInterfaceId>", xml)
                if created == 200 and eni:
                    made.append(eni.group(1))
            with LOCK:
                LB_INTERFACES[arn] = made
        if status == 200 and action == "DeleteLoadBalancer":
            with LOCK:
                made = LB_INTERFACES.pop(params.get("LoadBalancerArn"), [])
            for eni in made:
                self.ec2({"Action": "DeleteNetworkInterface", "NetworkInterfaceId": eni})
        self.send(status, data, headers)

    def delete_nat_gateway(self, params, body):
        """Gap 13: forwards DeleteNatGateway, then frees the addresses
        associated with the gateway's interfaces."""
        nat = params.get("NatGatewayId")
        found = self.ec2_items("DescribeNatGateways", "natGatewaySet/item", nat_gateway_id=[nat]) if nat else []
        interfaces = [
            eni.text for n in found for eni in n.findall("natGatewayAddressSet/item/networkInterfaceId") if eni.text
        ]
        status, headers, data = self.upstream_call(self.command, self.path, self.headers.items(), body)
        if status == 200 and interfaces:
            held = self.ec2_items("DescribeAddresses", "addressesSet/item", network_interface_id=interfaces)
            for address in held:
                association = address.findtext("associationId")
                if association:
                    self.ec2({"Action": "DisassociateAddress", "AssociationId": association})
        self.send(status, data, headers)

    def json_call(self, target, payload):
        """`target` of a JSON-protocol service, `payload` as a dict."""
        return self.moto_json("POST", "/", json.dumps(payload).encode(), target)

    def update_alias(self, body):
        """Gap 14: UpdateAlias as DeleteAlias then CreateAlias. moto checks
        the target key on CreateAlias, so an unknown key still fails as
        UpdateAlias would (though the alias is gone by then)."""
        request = json.loads(body)
        name = request.get("AliasName", "")
        status, answer = self.json_call("TrentService.ListAliases", {})
        if status == 200 and not any(a.get("AliasName") == name for a in answer.get("Aliases", [])):
            return self.send_error_json(400, "NotFoundException", f"Alias {name} is not found.")
        status, answer = self.json_call("TrentService.DeleteAlias", {"AliasName": name})
        if status == 200:
            status, answer = self.json_call(
                "TrentService.CreateAlias", {"AliasName": name, "TargetKeyId": request.get("TargetKeyId", "")}
            )
        return self.send_json(status, answer)

    def log_group_keys(self, action, body):
        """Gap 14: serves Associate/DisassociateKmsKey, and patches
        DescribeLogGroups with what they set. False: forward unchanged."""
        access_key, region = self.ident
        request = json.loads(body) if body.strip() else {}
        name = request.get("logGroupName")
        if action in ("AssociateKmsKey", "DisassociateKmsKey") and name:
            status, found = self.json_call("Logs_20140328.DescribeLogGroups", {"logGroupNamePrefix": name})
            if status != 200 or not any(g.get("logGroupName") == name for g in found.get("logGroups", [])):
                self.send_error_json(400, "ResourceNotFoundException", "The specified log group does not exist.")
                return True
            with LOCK:
                LOG_GROUP_KEYS[(access_key, region, name)] = request.get("kmsKeyId") if action == "AssociateKmsKey" else None
            self.send_json(200, {})
            return True
        if action not in ("CreateLogGroup", "DeleteLogGroup", "DescribeLogGroups"):
            return False
        status, headers, data = self.upstream_call(self.command, self.path, self.headers.items(), body)
        if status == 200 and action != "DescribeLogGroups":
            # A group made or deleted again starts from its own key.
            with LOCK:
                LOG_GROUP_KEYS.pop((access_key, region, name), None)
        elif status == 200:
            answer = json.loads(data)
            with LOCK:
                for group in answer.get("logGroups", []):
                    key = (access_key, region, group.get("logGroupName"))
                    if key in LOG_GROUP_KEYS:
                        group.pop("kmsKeyId", None)
                        if LOG_GROUP_KEYS[key]:
                            group["kmsKeyId"] = LOG_GROUP_KEYS[key]
            data = json.dumps(answer).encode()
        self.send(status, data, headers)
        return True

    # -- dispatch -------------------------------------------------------

    def handle_any(self):
        body, chunked = self.read_body()
        if self.path == "/_shim/deny-region" and self.command == "POST":
            request = json.loads(body)
            with LOCK:
                if request.get("deny", True):
                    DENIED_REGIONS.add((request["access_key"], request["region"]))
                else:
                    DENIED_REGIONS.discard((request["access_key"], request["region"]))
            return self.send_json(200, {})
        match = CREDENTIAL.search(self.headers.get("Authorization", ""))
        if match and (match.group(1), match.group(2)) in DENIED_REGIONS:
            return self.deny_region(match.group(2), match.group(3))
        if self.path == "/_shim/endpoint" and self.command == "POST":
            request = json.loads(body)
            with LOCK:
                ENDPOINTS[(request["access_key"], request["cluster"])] = request["endpoint"]
            return self.send_json(200, {})
        if not chunked and match and match.group(3) == "ec2" and b"Action=DescribeLaunchTemplateVersions" in body:
            return self.launch_template_versions(body)
        if not chunked and match and match.group(3) == "s3" and self.bucket_policy(body):
            return None
        if not chunked and match and match.group(3) in ("ec2", "elasticloadbalancing"):
            params = dict(urllib.parse.parse_qsl(body.decode(errors="replace")))
            self.ident = (match.group(1), match.group(2))
            action = params.get("Action")
            if match.group(3) == "ec2" and action in DEPENDENCY_CHECKS:
                return self.refuse_in_use(action, params, body)
            if match.group(3) == "ec2" and action == "DeleteNatGateway":
                return self.delete_nat_gateway(params, body)
            if match.group(3) == "elasticloadbalancing" and action in ("CreateLoadBalancer", "DeleteLoadBalancer"):
                return self.load_balancer_interfaces(action, params, body)
        target = self.headers.get("X-Amz-Target", "")
        if not chunked and match and target == "TrentService.UpdateAlias":
            return self.update_alias(body)
        if not chunked and match and target.startswith("Logs_20140328."):
            self.ident = (match.group(1), match.group(2))
            if self.log_group_keys(target.split(".", 1)[1], body):
                return None
        if chunked or not match or match.group(3) != "eks":
            return self.forward(body)
        self.ident = (match.group(1), match.group(2))
        self.store = store_for(self.ident)
        url = urllib.parse.urlsplit(self.path)
        parts = [urllib.parse.unquote(p) for p in url.path.strip("/").split("/")]
        query = dict(urllib.parse.parse_qsl(url.query))
        try:
            payload = json.loads(body) if body.strip() else {}
        except ValueError:
            return self.forward(body)
        try:
            if not self.route(parts, query, payload, body):
                self.forward(body)
        except NotFound as e:
            self.send_error_json(404, "ResourceNotFoundException", str(e))
        except Conflict as e:
            self.send_error_json(409, "ResourceInUseException", str(e))

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = handle_any

    def route(self, p, q, body, raw):
        m = self.command
        n = len(p)
        if p[:2] == ["addons", "supported-versions"] and m == "GET":
            return self.addon_versions(q)
        if not p or p[0] != "clusters":
            if p and p[0] == "tags" and n >= 2:
                return self.tags("/".join(p[1:]), q, body)
            return False
        if n == 1 and m == "POST":
            return self.create_cluster(body, raw)
        if n < 2:
            return False
        cluster = p[1]
        if n == 2 and m == "GET":
            return self.describe_cluster(cluster)
        if n == 2 and m == "DELETE":
            return self.delete_cluster(cluster)
        kind = p[2] if n > 2 else None
        if kind == "node-groups":
            if n == 3 and m == "POST":
                return self.create_nodegroup(cluster, body, raw)
            if n == 4 and m == "GET":
                return self.describe_nodegroup(cluster, p[3])
            return False
        if kind == "access-entries":
            return self.access_entries(m, cluster, p[3:], q, body)
        if kind == "pod-identity-associations":
            return self.pod_identities(m, cluster, p[3:], q, body)
        if kind == "addons":
            return self.addons(m, cluster, p[3:], q, body)
        return False

    # -- clusters and node groups (patched moto answers) ----------------

    def cluster_arn(self, cluster):
        status, data = self.moto_json("GET", "/clusters/" + urllib.parse.quote(cluster, safe=""))
        if status != 200:
            raise NotFound(f"No cluster found for name: {cluster}.")
        return data["cluster"]["arn"]

    def create_cluster(self, body, raw):
        status, headers, data = self.upstream_call(self.command, self.path, self.headers.items(), raw)
        if status == 200:
            access = body.get("accessConfig") or {}
            self.store.clusters[body["name"]] = {
                "access": {"authenticationMode": access.get("authenticationMode", "CONFIG_MAP")},
            }
        self.send(status, data, headers)
        return True

    def describe_cluster(self, cluster):
        status, headers, data = self.upstream_call(self.command, self.path, self.headers.items(), b"")
        if status == 200:
            doc = json.loads(data)
            c = doc["cluster"]
            extra = self.store.clusters.setdefault(cluster, {"access": {"authenticationMode": "CONFIG_MAP"}})
            c.setdefault("accessConfig", extra["access"])
            c["certificateAuthority"] = {"data": base64.b64encode(TEST_CA.encode()).decode()}
            with LOCK:
                endpoint = ENDPOINTS.get((self.ident[0], cluster))
            if endpoint:
                c["endpoint"] = endpoint
            vpc_config = c.setdefault("resourcesVpcConfig", {})
            if not vpc_config.get("clusterSecurityGroupId"):
                self.ensure_cluster_sg(cluster, extra, vpc_config.get("subnetIds") or [])
                vpc_config["clusterSecurityGroupId"] = extra.get("sg", "")
                vpc_config.setdefault("vpcId", extra.get("vpc", ""))
            data = json.dumps(doc).encode()
        self.send(status, data, headers)
        return True

    def ensure_cluster_sg(self, cluster, extra, subnets):
        if extra.get("sg") or not subnets:
            return
        status, xml = self.ec2({"Action": "DescribeSubnets", "SubnetId.1": subnets[0]})
        vpc = re.search(r"<vpcId>([^<]+)</vpcId>", xml)
        if status != 200 or not vpc:
            return
        extra["vpc"] = vpc.group(1)
        name = f"eks-cluster-sg-{cluster}-{random.randint(10**9, 10**10 - 1)}"
        status, xml = self.ec2(
            {
                "Action": "CreateSecurityGroup",
                "GroupName": name,
                "GroupDescription": "EKS created security group applied to ENI that is attached to EKS Control Plane master nodes, as well as any managed workloads.",
                "VpcId": extra["vpc"],
                "TagSpecification.1.ResourceType": "security-group",
                "TagSpecification.1.Tag.1.Key": f"kubernetes.io/cluster/{cluster}",
                "TagSpecification.1.Tag.1.Value": "owned",
                "TagSpecification.1.Tag.2.Key": "aws:eks:cluster-name",
                "TagSpecification.1.Tag.2.Value": cluster,
            }
        )
        group = re.search(r"<groupId>([^<]+)</groupId>", xml)
        if status == 200 and group:
            extra["sg"] = group.group(1)

    def delete_cluster(self, cluster):
        status, headers, data = self.upstream_call(self.command, self.path, self.headers.items(), b"")
        if status == 200:
            extra = self.store.clusters.pop(cluster, {})
            if extra.get("sg"):
                self.ec2({"Action": "DeleteSecurityGroup", "GroupId": extra["sg"]})
            for table in (
                self.store.access_entries,
                self.store.policies,
                self.store.pod_identity,
                self.store.addons,
                self.store.nodegroups,
            ):
                for key in [k for k in table if k[0] == cluster]:
                    del table[key]
        self.send(status, data, headers)
        return True

    def create_nodegroup(self, cluster, body, raw):
        status, headers, data = self.upstream_call(self.command, self.path, self.headers.items(), raw)
        if status == 200:
            self.store.nodegroups[(cluster, body.get("nodegroupName"))] = body
        self.send(status, data, headers)
        return True

    def describe_nodegroup(self, cluster, name):
        status, headers, data = self.upstream_call(self.command, self.path, self.headers.items(), b"")
        request = self.store.nodegroups.get((cluster, name))
        if status == 200 and request is not None:
            doc = json.loads(data)
            nodegroup = doc["nodegroup"]
            if "remoteAccess" not in request:
                nodegroup.pop("remoteAccess", None)
            if "updateConfig" in request:
                nodegroup.setdefault("updateConfig", request["updateConfig"])
            data = json.dumps(doc).encode()
        self.send(status, data, headers)
        return True

    def launch_template_versions(self, body):
        status, headers, data = self.upstream_call(self.command, self.path, self.headers.items(), body)
        if status == 200:
            data = LAUNCH_TEMPLATE_TAGS.sub(b"", data)
        self.send(status, data, headers)

    # -- access entries -------------------------------------------------

    def access_entries(self, m, cluster, rest, q, body):
        s = self.store
        if not rest:
            if m == "POST":
                arn = self.cluster_arn(cluster)
                principal = body["principalArn"]
                if (cluster, principal) in s.access_entries:
                    raise Conflict(f"The specified access entry resource is already in use on this cluster.")
                account = arn.split(":")[4]
                kind = body.get("type", "STANDARD")
                entry = {
                    "clusterName": cluster,
                    "principalArn": principal,
                    "kubernetesGroups": body.get("kubernetesGroups", []),
                    "accessEntryArn": arn.replace(":cluster/", ":access-entry/")
                    + "/"
                    + principal.split(":", 5)[5].replace("/", "/" + account + "/", 1)
                    + "/"
                    + suffix(36, string.hexdigits.lower()),
                    "createdAt": now(),
                    "modifiedAt": now(),
                    "tags": body.get("tags", {}),
                    "username": body.get("username") or default_username(kind, principal),
                    "type": kind,
                }
                s.access_entries[(cluster, principal)] = entry
                return self.send_json(200, {"accessEntry": entry})
            if m == "GET":
                names = [p for (c, p) in s.access_entries if c == cluster]
                return self.send_json(200, {"accessEntries": names})
            return False
        principal = rest[0]
        key = (cluster, principal)
        entry = s.access_entries.get(key)
        if entry is None:
            raise NotFound(f"The specified principalArn could not be found. You can view your available access entries with 'list-access-entries'.")
        if len(rest) == 1:
            if m == "GET":
                return self.send_json(200, {"accessEntry": entry})
            if m == "POST":
                for field in ("kubernetesGroups", "username"):
                    if field in body:
                        entry[field] = body[field]
                entry["modifiedAt"] = now()
                return self.send_json(200, {"accessEntry": entry})
            if m == "DELETE":
                del s.access_entries[key]
                s.policies.pop(key, None)
                return self.send_json(200, {})
            return False
        if rest[1] != "access-policies":
            return False
        policies = s.policies.setdefault(key, {})
        if len(rest) == 2 and m == "POST":
            association = {
                "policyArn": body["policyArn"],
                "accessScope": body.get("accessScope", {"type": "cluster", "namespaces": []}),
                "associatedAt": now(),
                "modifiedAt": now(),
            }
            policies[body["policyArn"]] = association
            reply = {"clusterName": cluster, "principalArn": principal, "associatedAccessPolicy": association}
            return self.send_json(200, reply)
        if len(rest) == 2 and m == "GET":
            reply = {
                "clusterName": cluster,
                "principalArn": principal,
                "associatedAccessPolicies": list(policies.values()),
            }
            return self.send_json(200, reply)
        if len(rest) == 3 and m == "DELETE":
            if policies.pop(rest[2], None) is None:
                raise NotFound("The specified policy is not associated with this access entry.")
            return self.send_json(200, {})
        return False

    # -- pod identity associations --------------------------------------

    def new_association(self, cluster, cluster_arn, namespace, service_account, role, tags, owner=None):
        assoc_id = "a-" + suffix(17)
        association = {
            "clusterName": cluster,
            "namespace": namespace,
            "serviceAccount": service_account,
            "roleArn": role,
            "associationArn": cluster_arn.replace(":cluster/", ":podidentityassociation/") + "/" + assoc_id,
            "associationId": assoc_id,
            "tags": tags,
            "createdAt": now(),
            "modifiedAt": now(),
            "disableSessionTags": False,
        }
        if owner:
            association["ownerArn"] = owner
        self.store.pod_identity[(cluster, assoc_id)] = association
        return association

    def pod_identities(self, m, cluster, rest, q, body):
        s = self.store
        if not rest:
            if m == "POST":
                arn = self.cluster_arn(cluster)
                for a in s.pod_identity.values():
                    if a["clusterName"] == cluster and (a["namespace"], a["serviceAccount"]) == (
                        body["namespace"],
                        body["serviceAccount"],
                    ):
                        raise Conflict("Association already exists for this service account.")
                association = self.new_association(
                    cluster, arn, body["namespace"], body["serviceAccount"], body["roleArn"], body.get("tags", {})
                )
                for field in ("disableSessionTags", "targetRoleArn"):
                    if field in body:
                        association[field] = body[field]
                return self.send_json(200, {"association": association})
            if m == "GET":
                found = [
                    {k: a[k] for k in ("clusterName", "namespace", "serviceAccount", "associationArn", "associationId") + (("ownerArn",) if "ownerArn" in a else ())}
                    for a in s.pod_identity.values()
                    if a["clusterName"] == cluster
                    and q.get("namespace", a["namespace"]) == a["namespace"]
                    and q.get("serviceAccount", a["serviceAccount"]) == a["serviceAccount"]
                ]
                return self.send_json(200, {"associations": found})
            return False
        key = (cluster, rest[0])
        association = s.pod_identity.get(key)
        if association is None or len(rest) != 1:
            raise NotFound(f"The specified association {rest[0]} could not be found.")
        if m == "GET":
            return self.send_json(200, {"association": association})
        if m == "POST":
            for field in ("roleArn", "disableSessionTags", "targetRoleArn"):
                if field in body:
                    association[field] = body[field]
            association["modifiedAt"] = now()
            return self.send_json(200, {"association": association})
        if m == "DELETE":
            del s.pod_identity[key]
            return self.send_json(200, {"association": association})
        return False

    # -- add-ons --------------------------------------------------------

    def addon_pod_identities(self, cluster, cluster_arn, addon_arn, requested, tags):
        arns = []
        for item in requested or []:
            association = self.new_association(
                cluster, cluster_arn, "kube-system", item["serviceAccount"], item["roleArn"], tags, owner=addon_arn
            )
            arns.append(association["associationArn"])
        return arns

    def drop_owned(self, cluster, addon_arn):
        for key in [k for k, a in self.store.pod_identity.items() if k[0] == cluster and a.get("ownerArn") == addon_arn]:
            del self.store.pod_identity[key]

    def addons(self, m, cluster, rest, q, body):
        s = self.store
        if not rest:
            if m == "POST":
                arn = self.cluster_arn(cluster)
                name = body["addonName"]
                if (cluster, name) in s.addons:
                    raise Conflict(f"Addon already exists: {name}")
                addon_arn = arn.replace(":cluster/", ":addon/") + f"/{name}/" + suffix(36, string.hexdigits.lower())
                addon = {
                    "addonName": name,
                    "clusterName": cluster,
                    "status": "ACTIVE",
                    "addonVersion": body.get("addonVersion") or DEFAULT_ADDON_VERSIONS.get(name, "v1.0.0-eksbuild.1"),
                    "health": {"issues": []},
                    "addonArn": addon_arn,
                    "createdAt": now(),
                    "modifiedAt": now(),
                    "tags": body.get("tags", {}),
                    "podIdentityAssociations": self.addon_pod_identities(
                        cluster, arn, addon_arn, body.get("podIdentityAssociations"), body.get("tags", {})
                    ),
                }
                for field in ("serviceAccountRoleArn", "configurationValues"):
                    if body.get(field):
                        addon[field] = body[field]
                s.addons[(cluster, name)] = addon
                return self.send_json(200, {"addon": addon})
            if m == "GET":
                names = [a for (c, a) in s.addons if c == cluster]
                return self.send_json(200, {"addons": names})
            return False
        key = (cluster, rest[0])
        addon = s.addons.get(key)
        if addon is None:
            raise NotFound(f"No addon: {rest[0]} found in cluster: {cluster}")
        if len(rest) == 1 and m == "GET":
            return self.send_json(200, {"addon": addon})
        if len(rest) == 1 and m == "DELETE":
            del s.addons[key]
            if q.get("preserve") != "true":
                self.drop_owned(cluster, addon["addonArn"])
            return self.send_json(200, {"addon": addon})
        if len(rest) == 2 and rest[1] == "update" and m == "POST":
            for field in ("addonVersion", "serviceAccountRoleArn", "configurationValues"):
                if field in body:
                    addon[field] = body[field]
            if "podIdentityAssociations" in body:
                self.drop_owned(cluster, addon["addonArn"])
                addon["podIdentityAssociations"] = self.addon_pod_identities(
                    cluster, self.cluster_arn(cluster), addon["addonArn"], body["podIdentityAssociations"], addon["tags"]
                )
            addon["modifiedAt"] = now()
            update = {"id": suffix(36, string.hexdigits.lower()), "status": "Successful", "type": "AddonUpdate", "params": [], "createdAt": now(), "errors": []}
            addon.setdefault("updates", {})[update["id"]] = update
            return self.send_json(200, {"update": update})
        if len(rest) == 3 and rest[1] == "updates" and m == "GET":
            update = addon.get("updates", {}).get(rest[2])
            if update is None:
                raise NotFound(f"No update: {rest[2]}")
            return self.send_json(200, {"update": update})
        return False

    def addon_versions(self, q):
        names = [q["addonName"]] if q.get("addonName") else sorted(DEFAULT_ADDON_VERSIONS)
        wanted = q.get("kubernetesVersion")
        addons = []
        for name in names:
            versions = [
                v for v in addon_version_list(name)
                if wanted is None or any(c["clusterVersion"] == wanted for c in v["compatibilities"])
            ]
            if versions:
                addons.append({"addonName": name, "type": "networking", "owner": "aws", "addonVersions": versions})
        return self.send_json(200, {"addons": addons})

    # -- tags on the resources served here -------------------------------

    def tags(self, arn, q, body):
        s = self.store
        resources = (
            list(s.access_entries.values())
            + list(s.pod_identity.values())
            + list(s.addons.values())
        )
        arn_keys = ("accessEntryArn", "associationArn", "addonArn")
        target = next((r for r in resources if any(r.get(k) == arn for k in arn_keys)), None)
        if target is None:
            return False
        if self.command == "GET":
            self.send_json(200, {"tags": target["tags"]})
        elif self.command == "POST":
            target["tags"].update(body.get("tags", {}))
            self.send_json(200, {})
        elif self.command == "DELETE":
            for key in urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).get("tagKeys", []):
                target["tags"].pop(key, None)
            self.send_json(200, {})
        else:
            return False
        return True


DEPENDENCY_CHECKS = {
    "DeleteSubnet": (Handler.subnet_dependencies, "SubnetId", "subnet"),
    "DeleteSecurityGroup": (Handler.group_dependencies, "GroupId", "security group"),
    "DeleteVpc": (Handler.vpc_dependencies, "VpcId", "vpc"),
}


def default_username(kind, principal):
    if kind == "EC2_LINUX":
        return "system:node:{{EC2PrivateDNSName}}"
    match = re.match(r"arn:([^:]+):iam::(\d+):role/(?:.*/)?([^/]+)$", principal)
    if match:
        return f"arn:{match.group(1)}:sts::{match.group(2)}:assumed-role/{match.group(3)}/{{{{SessionName}}}}"
    return principal


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="moto's URL, http://host:port")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    upstream = urllib.parse.urlsplit(args.upstream)
    Handler.upstream = (upstream.hostname, upstream.port or 80)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.verbose = args.verbose
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

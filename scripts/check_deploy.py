#!/usr/bin/env python3
"""Static checks of the deployment against the binary's own defaults.

Usage: check_deploy.py FACTS_JSON TERRAFORM_DIR

FACTS_JSON is `edge config defaults --json`. Nothing here reaches AWS: the Terraform is parsed
(python-hcl2) and read as text, and every timing that must agree with the binary is compared
with what the binary says. When a timing in the binary changes, this fails until the Terraform
follows. Each failure names the file and what to change.
"""

import json
import pathlib
import re
import sys

import hcl2


def fail(errors, message):
    errors.append(message)


def unquote(v):
    if isinstance(v, str) and len(v) >= 2 and v[0] == v[-1] == '"':
        return v[1:-1]
    return v


def load(tf_dir):
    parsed = {}
    for path in sorted(tf_dir.rglob("*.tf")):
        if ".terraform" in path.parts:
            continue
        with path.open() as f:
            parsed[path] = hcl2.load(f)
    return parsed


def variables(doc):
    out = {}
    for block in doc.get("variable", []):
        for name, body in block.items():
            out[unquote(name)] = body
    return out


def module_defaults(parsed, tf_dir, module):
    out = {}
    for path, doc in parsed.items():
        if path.parent == tf_dir / "modules" / module:
            for name, body in variables(doc).items():
                if "default" in body:
                    out[name] = unquote(body["default"])
    return out


def number(v):
    return float(unquote(v))


def main():
    facts = json.loads(pathlib.Path(sys.argv[1]).read_text())
    tf_dir = pathlib.Path(sys.argv[2])
    errors = []
    parsed = load(tf_dir)
    if not parsed:
        print(f"no Terraform under {tf_dir}")
        return 1
    texts = {p: p.read_text() for p in parsed}

    # Every variable is typed and described.
    for path, doc in parsed.items():
        for name, body in variables(doc).items():
            if "type" not in body or "description" not in body:
                fail(errors, f"{path}: variable {name} needs a type and a description")

    root_vars = {}
    for path, doc in parsed.items():
        if path.parent == tf_dir:
            for name, body in variables(doc).items():
                if "default" in body:
                    root_vars[name] = unquote(body["default"])
    calls = {}
    for path, doc in parsed.items():
        if path.parent != tf_dir:
            continue
        for block in doc.get("module", []):
            for _name, body in block.items():
                source = str(unquote(body.get("source", "")))
                calls.setdefault(source.rstrip("/").split("/")[-1], []).append(body)

    def effective(module, name):
        """What the root passes to `module` for `name` (resolving var.X to its default), else
        the module's default. None when it cannot be known statically."""
        values = []
        for body in calls.get(module, []) or [{}]:
            if name in body:
                v = unquote(body[name])
                m = re.fullmatch(r"\$\{var\.(\w+)\}", str(v))
                if m:
                    v = root_vars.get(m.group(1))
                values.append(v)
            else:
                values.append(module_defaults(parsed, tf_dir, module).get(name))
        if any(v is None for v in values) or len(set(map(str, values))) != 1:
            return None
        return values[0]

    need = {
        "alb": ["idle_timeout_seconds", "deregistration_delay_seconds",
                "health_check_interval_seconds", "unhealthy_threshold",
                "health_check_path", "target_port"],
        "edge_service": ["drain_delay_seconds", "shutdown_timeout_seconds",
                         "stop_timeout_seconds", "listen_port", "admin_port",
                         "idle_timeout_seconds", "sse_heartbeat_seconds"],
        "worker_group": ["shutdown_timeout_seconds", "stop_timeout_seconds"],
    }
    eff = {}
    for module, names in need.items():
        for n in names:
            v = effective(module, n)
            if v is None:
                fail(errors, f"modules/{module}: {n} cannot be known statically (pass a literal "
                             "or var.X with a default, the same to every instance)")
            eff[(module, n)] = v
    if errors:
        print("\n".join(errors))
        return 1
    alb = {n: eff[("alb", n)] for n in need["alb"]}
    edge = {n: eff[("edge_service", n)] for n in need["edge_service"]}

    idle = number(alb["idle_timeout_seconds"])
    dereg = number(alb["deregistration_delay_seconds"])
    interval = number(alb["health_check_interval_seconds"])
    unhealthy = number(alb["unhealthy_threshold"])
    drain = number(edge["drain_delay_seconds"])
    shutdown = number(edge["shutdown_timeout_seconds"])
    stop = number(edge["stop_timeout_seconds"])
    heartbeat = number(edge["sse_heartbeat_seconds"])
    keep_alive = number(edge["idle_timeout_seconds"])

    # The Terraform restates the binary's defaults it does not change on purpose: a timing
    # changed in the binary fails here until the Terraform follows.
    for fact, value, where in [("sse_heartbeat_s", heartbeat, "sse_heartbeat_seconds"),
                               ("keep_alive_timeout_s", keep_alive, "edge_keepalive_seconds"),
                               ("shutdown_timeout_s", shutdown, "shutdown_timeout_seconds")]:
        if value != facts[fact]:
            fail(errors, f"the deployment's {where} ({value}s) differs from the binary's default "
                         f"({facts[fact]}s): follow the binary, or change both on purpose")
    if alb["health_check_path"] != facts["probes"]["readiness_path"]:
        fail(errors, f"modules/alb: health_check_path {alb['health_check_path']!r} is not the "
                     f"binary's readiness path {facts['probes']['readiness_path']!r}")
    for module, have, name in [("alb", alb, "target_port"), ("edge_service", edge, "listen_port")]:
        if int(number(have[name])) != facts["listen_port"]:
            fail(errors, f"modules/{module}: {name} {have[name]} is not the binary's port "
                         f"{facts['listen_port']}")
    if int(number(edge["admin_port"])) != facts["admin_port"]:
        fail(errors, f"modules/edge_service: admin_port is not the binary's {facts['admin_port']}")
    if not heartbeat < idle < keep_alive:
        fail(errors, f"need SSE heartbeat ({heartbeat}s) < ALB idle timeout ({idle}s) < the "
                     f"edge's keep-alive ({keep_alive}s)")
    if dereg < drain:
        fail(errors, f"ALB deregistration delay ({dereg}s) must be >= the drain delay ({drain}s)")
    if not drain + shutdown <= stop <= 120:
        fail(errors, f"ECS stopTimeout ({stop}s) must be >= drain + shutdown "
                     f"({drain}+{shutdown}s) and <= 120")
    if drain < interval * unhealthy:
        fail(errors, f"drain delay ({drain}s) must be >= health-check interval x unhealthy "
                     f"threshold ({interval}x{unhealthy}s), so the ALB sees readiness fail first")
    w_stop = number(eff[("worker_group", "stop_timeout_seconds")])
    w_shutdown = number(eff[("worker_group", "shutdown_timeout_seconds")])
    if not w_shutdown <= w_stop <= 120:
        fail(errors, f"workers: stopTimeout ({w_stop}s) must be >= their shutdown timeout "
                     f"({w_shutdown}s) and <= 120")

    # The task passes the drain delay and shutdown timeout from those variables.
    edge_text = "".join(t for p, t in texts.items() if "edge_service" in p.parts)
    for env in (facts["env"]["drain_delay"], facts["env"]["shutdown_timeout"]):
        if env not in edge_text:
            fail(errors, f"modules/edge_service: the task must set {env}")

    # Container health checks: exec-form `edge healthcheck` (a worker's on its admin port, as it
    # serves no HTTPS), never readiness.
    allowed = ('["CMD", "/usr/local/bin/edge", "healthcheck"]',
               '["CMD", "/usr/local/bin/edge", "healthcheck", "--admin"]')
    checks = 0
    for path, text in texts.items():
        for m in re.finditer(r"healthCheck\s*=\s*\{(.*?)\}", text, re.S):
            checks += 1
            command = re.search(r"command\s*=\s*(\[[^\]]*\])", m.group(1))
            got = re.sub(r"\s+", " ", command.group(1)) if command else None
            if got not in allowed:
                fail(errors, f"{path}: container healthCheck command must be one of {allowed}, "
                             f"got {got}")
            if "readyz" in m.group(1):
                fail(errors, f"{path}: a container health check must not use readiness")
    if checks < 2:
        fail(errors, "the edge and worker containers each need a healthCheck")

    # No secret-looking names in plain environment variables.
    secretish = re.compile(r"(TOKEN|SECRET|PASSWORD|API_KEYS?|_PEM|CREDS|CREDENTIALS|_KEYS?)\b")
    for path, text in texts.items():
        for m in re.finditer(r"environment\s*=\s*\[(.*?)\n\s*\]", text, re.S):
            for name in re.findall(r'name\s*=\s*"([^"]+)"', m.group(1)):
                if secretish.search(name):
                    fail(errors, f"{path}: {name} looks secret: pass it in `secrets`")
                if name.startswith("EDGE_HEALTHCHECK_"):
                    fail(errors, f"{path}: {name} would change what the liveness check probes")

    # Security groups, rule by rule (network module): every ingress comes from another group as
    # the table below allows, or from the VPC CIDR (admin, monitoring), or, on the ALB only, from
    # the internet to exactly 443 or 80 over TCP.
    allowed_from = {  # (target group, port variable) -> source groups
        ("edge", "listen_port"): {"alb"},
        ("nats", "nats_client_port"): {"edge", "worker"},
        ("nats", "nats_cluster_port"): {"nats"},
    }
    world = {'"${local.anywhere_v4}"', '"${local.anywhere_v6}"', '"0.0.0.0/0"', '"::/0"',
             "${local.anywhere_v4}", "${local.anywhere_v6}", "0.0.0.0/0", "::/0"}
    for path, doc in parsed.items():
        for block in doc.get("resource", []):
            for rtype, named in block.items():
                rtype = unquote(rtype)
                for rname, body in named.items():
                    rname = unquote(rname)
                    where = f"{path}: {rtype}.{rname}"
                    if rtype == "aws_security_group" and "ingress" in body:
                        fail(errors, f"{where}: write ingress as separate rules, not inline")
                    if rtype == "aws_security_group_rule":
                        fail(errors, f"{where}: use aws_vpc_security_group_ingress_rule")
                    if rtype != "aws_vpc_security_group_ingress_rule":
                        continue
                    target = re.search(r"aws_security_group\.(\w+)\.id", str(body.get("security_group_id", "")))
                    target = target.group(1) if target else None
                    source = re.search(r"aws_security_group\.(\w+)\.id",
                                       str(body.get("referenced_security_group_id", "")))
                    cidr = unquote(body.get("cidr_ipv4", body.get("cidr_ipv6", "")))
                    proto = unquote(body.get("ip_protocol", ""))
                    lo, hi = str(unquote(body.get("from_port", ""))), str(unquote(body.get("to_port", "")))
                    if lo != hi or proto != "tcp":
                        fail(errors, f"{where}: one TCP port per rule (got {proto} {lo}-{hi})")
                        continue
                    port = re.sub(r"^\$\{var\.(\w+)\}$", r"\1", lo)
                    if source:
                        want = allowed_from.get((target, port))
                        if want is not None and source.group(1) not in want:
                            fail(errors, f"{where}: {target}:{port} may be reached only from {sorted(want)}")
                        continue
                    if cidr in world:
                        if target != "alb" or lo not in ("443", "80"):
                            fail(errors, f"{where}: only the ALB is open to the internet, on 443 and 80")
                        continue
                    if cidr != "${var.vpc_cidr}":
                        fail(errors, f"{where}: ingress from {cidr!r}; only groups, the VPC CIDR, "
                                     "or (ALB only) the internet")
                        continue
                    if (target, port) in allowed_from:
                        fail(errors, f"{where}: {target}:{port} must come from groups, not a CIDR")

    # NATS is TLS everywhere; its storage is never EFS.
    for path, text in texts.items():
        if re.search(r"\bnats://", text):
            fail(errors, f"{path}: a NATS URL must be tls://, not nats://")
        if "efs_volume_configuration" in text or "aws_efs_" in text:
            fail(errors, f"{path}: NATS storage must be block storage, not EFS")
    if not any("tls://" in t for t in texts.values()):
        fail(errors, "no tls:// NATS URL found in the Terraform")
    for template in tf_dir.rglob("*.tftpl"):
        if re.search(r"\bnats://", template.read_text()):
            fail(errors, f"{template}: a NATS URL must be tls://")

    # The NATS permissions shipped beside the root module are made for its default worker groups
    # (check-deploy makes them again with the binary and compares), and include auth.conf.
    perms_path = tf_dir / "nats-permissions.conf"
    perms = perms_path.read_text() if perms_path.is_file() else ""
    groups = {}
    for path, doc in parsed.items():
        if path.parent == tf_dir:
            groups = variables(doc).get("worker_groups", {}).get("default", groups)
    header = "# worker groups: " + " ".join(
        f"{unquote(k)}={','.join(sorted({unquote(s) for s in g['services']}))}"
        for k, g in sorted(groups.items(), key=lambda kv: unquote(kv[0])))
    if header + "\n" not in perms:
        fail(errors, f"{perms_path}: not made for the default worker_groups; want the line "
                     f"{header!r}: run edge nats-auth --passwords-include auth.conf with a "
                     "--worker-group for each")
    if 'include "auth.conf"\nauthorization {' not in perms:
        fail(errors, f"{perms_path}: must include auth.conf (--passwords-include auth.conf)")
    main_text = texts.get(tf_dir / "main.tf", "")
    if "nats-permissions.conf" not in main_text or "nats_permissions_contract" not in main_text:
        fail(errors, "main.tf: the NATS nodes must get the permissions, checked against worker_groups")
    for module, role in (("edge_service", '"edge"'), ("worker_group", '"worker-${var.name}"')):
        text = "".join(t for p, t in texts.items() if module in p.parts)
        if f'name = "EDGE_NATS_USER", value = {role}' not in text:
            fail(errors, f"modules/{module}: the task must log in to NATS as {role} (EDGE_NATS_USER)")
        for env in ("EDGE_NATS_PASSWORD", "EDGE_NATS_SIGNING_KEYS"):
            if f'name = "{env}", valueFrom' not in text:
                fail(errors, f"modules/{module}: the task needs {env} from Secrets Manager")

    if errors:
        print("deployment checks failed:")
        print("\n".join(f"- {e}" for e in errors))
        return 1
    print(f"deployment checks passed: heartbeat {heartbeat}s < ALB idle {idle}s < keep-alive "
          f"{keep_alive}s; drain {drain}s <= deregistration {dereg}s; stop {stop}s >= "
          f"{drain}+{shutdown}s; {checks} container health checks; NATS permissions for "
          f"{header[len('# worker groups: '):]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

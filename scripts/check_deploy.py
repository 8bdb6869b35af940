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

    alb = module_defaults(parsed, tf_dir, "alb")
    edge = module_defaults(parsed, tf_dir, "edge_service")
    need = {
        "alb": ["idle_timeout_seconds", "deregistration_delay_seconds",
                "health_check_interval_seconds", "unhealthy_threshold",
                "health_check_path", "target_port"],
        "edge_service": ["drain_delay_seconds", "shutdown_timeout_seconds",
                         "stop_timeout_seconds", "listen_port", "admin_port"],
    }
    for module, names in need.items():
        have = alb if module == "alb" else edge
        for n in names:
            if n not in have:
                fail(errors, f"modules/{module}: variable {n} needs a default")
    if errors:
        print("\n".join(errors))
        return 1

    idle = number(alb["idle_timeout_seconds"])
    dereg = number(alb["deregistration_delay_seconds"])
    interval = number(alb["health_check_interval_seconds"])
    unhealthy = number(alb["unhealthy_threshold"])
    drain = number(edge["drain_delay_seconds"])
    shutdown = number(edge["shutdown_timeout_seconds"])
    stop = number(edge["stop_timeout_seconds"])
    heartbeat = facts["sse_heartbeat_s"]
    keep_alive = facts["keep_alive_timeout_s"]

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
                     f"edge's keep-alive ({keep_alive}s): modules/alb idle_timeout_seconds")
    if dereg < drain:
        fail(errors, f"ALB deregistration delay ({dereg}s) must be >= the drain delay ({drain}s)")
    if not drain + shutdown <= stop <= 120:
        fail(errors, f"ECS stopTimeout ({stop}s) must be >= drain + shutdown "
                     f"({drain}+{shutdown}s) and <= 120")
    if drain < interval * unhealthy:
        fail(errors, f"drain delay ({drain}s) must be >= health-check interval x unhealthy "
                     f"threshold ({interval}x{unhealthy}s), so the ALB sees readiness fail first")

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
    secretish = re.compile(r"(TOKEN|SECRET|PASSWORD|API_KEY|_PEM|CREDS|CREDENTIALS|_KEY)\b")
    for path, text in texts.items():
        for m in re.finditer(r"environment\s*=\s*\[(.*?)\n\s*\]", text, re.S):
            for name in re.findall(r'name\s*=\s*"([^"]+)"', m.group(1)):
                if secretish.search(name):
                    fail(errors, f"{path}: {name} looks secret: pass it in `secrets`")

    # Only the ALB is open to the internet, and only on 443 and 80.
    for path, doc in parsed.items():
        for block in doc.get("resource", []):
            for rtype, named in block.items():
                for rname, body in named.items():
                    text = json.dumps(body)
                    open_world = "0.0.0.0/0" in text or "::/0" in text
                    if not open_world:
                        continue
                    ingress_rule = rtype in ("aws_vpc_security_group_ingress_rule",) or (
                        rtype == "aws_security_group_rule" and '"ingress"' in text)
                    inline = rtype == "aws_security_group" and "ingress" in body and (
                        "0.0.0.0/0" in json.dumps(body.get("ingress")) or
                        "::/0" in json.dumps(body.get("ingress")))
                    if not (ingress_rule or inline):
                        continue
                    if "alb" not in rname and "alb" not in str(path):
                        fail(errors, f"{path}: {rtype}.{rname} opens ingress to the internet; only "
                                     "the ALB may be")
                    ports = {str(unquote(body.get("from_port", ""))), str(unquote(body.get("to_port", "")))}
                    if inline:
                        ports = set(re.findall(r'"(?:from|to)_port": (\d+)', json.dumps(body["ingress"])))
                    if not ports <= {"443", "80"}:
                        fail(errors, f"{path}: {rtype}.{rname}: the internet may reach only 443 and "
                                     f"80, not {sorted(ports)}")

    # NATS is TLS everywhere; its storage is never EFS.
    for path, text in texts.items():
        if re.search(r"\bnats://", text):
            fail(errors, f"{path}: a NATS URL must be tls://, not nats://")
        if "efs_volume_configuration" in text:
            fail(errors, f"{path}: NATS storage must be block storage, not EFS")
    if not any("tls://" in t for t in texts.values()):
        fail(errors, "no tls:// NATS URL found in the Terraform")
    for template in tf_dir.rglob("*.tftpl"):
        if re.search(r"\bnats://", template.read_text()):
            fail(errors, f"{template}: a NATS URL must be tls://")

    if errors:
        print("deployment checks failed:")
        print("\n".join(f"- {e}" for e in errors))
        return 1
    print(f"deployment checks passed: heartbeat {heartbeat}s < ALB idle {idle}s < keep-alive "
          f"{keep_alive}s; drain {drain}s <= deregistration {dereg}s; stop {stop}s >= "
          f"{drain}+{shutdown}s; {checks} container health checks")
    return 0


if __name__ == "__main__":
    sys.exit(main())

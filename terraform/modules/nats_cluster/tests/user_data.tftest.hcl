# Plans the module against a mocked AWS provider (no credentials, no network) and checks what a
# node boots with: nats.conf, the log file the CloudWatch agent ships, the alarm.
mock_provider "aws" {
  # Computed attributes (volume ids in the user data) take these values already at plan.
  override_during = plan

  mock_data "aws_region" {
    defaults = { name = "eu-west-1", region = "eu-west-1" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_subnet" {
    defaults = { availability_zone = "eu-west-1a", cidr_block = "10.0.1.0/24" }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
  mock_resource "aws_ebs_volume" {
    defaults = { id = "vol-0123456789abcdef0" }
  }
  mock_resource "aws_secretsmanager_secret" {
    defaults = { arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:t-nats-permissions" }
  }
  mock_resource "aws_cloudwatch_log_group" {
    defaults = { arn = "arn:aws:logs:eu-west-1:123456789012:log-group:/ec2/t/nats" }
  }
}

# Three subnets in three zones, as the module requires.
override_data {
  target = data.aws_subnet.node[0]
  values = { availability_zone = "eu-west-1a" }
}
override_data {
  target = data.aws_subnet.node[1]
  values = { availability_zone = "eu-west-1b" }
}
override_data {
  target = data.aws_subnet.node[2]
  values = { availability_zone = "eu-west-1c" }
}

variables {
  name                   = "t"
  vpc_id                 = "vpc-1"
  subnet_ids             = ["subnet-1", "subnet-2", "subnet-3"]
  security_group_ids     = ["sg-1"]
  ami_id                 = "ami-1"
  server_cert_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:cert"
  server_key_secret_arn  = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:key"
  ca_secret_arn          = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ca"
  auth_config_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:auth"
  permissions            = file("../../nats-permissions.conf")
}

run "nodes_boot_with_their_config_and_ship_their_logs" {
  command = plan

  assert {
    condition     = length(aws_instance.node) == 3 && length(aws_ebs_volume.jetstream) == 3
    error_message = "three nodes, each with its own JetStream volume"
  }
  assert {
    condition = alltrue([for i, u in aws_instance.node[*].user_data :
      strcontains(yamldecode(trimprefix(u, "#cloud-config\n")).write_files[0].content, "server_name: nats-${i}")
    ])
    error_message = "each node's nats.conf names it"
  }
  # The users and permissions reach every node with the secrets: fetched, checked with
  # auth.conf, installed and included, never written into user data.
  assert {
    condition = alltrue([for u in aws_instance.node[*].user_data : (
      strcontains(yamldecode(trimprefix(u, "#cloud-config\n")).write_files[0].content, "include \"secrets/permissions.conf\"")
      && strcontains(one([for f in yamldecode(trimprefix(u, "#cloud-config\n")).write_files : f.content if f.path == "/usr/local/sbin/nats-fetch-secrets"]), "fetch \"${aws_secretsmanager_secret.permissions.arn}\" permissions.conf")
      && !strcontains(u, "NATS_PASSWORD_EDGE")
    )]) && aws_secretsmanager_secret_version.permissions.secret_string == var.permissions
    error_message = "every node fetches the permissions secret, checks it and includes it; user data carries none of it"
  }
  assert {
    condition = alltrue([for i, u in aws_instance.node[*].user_data :
      yamldecode(trimprefix(u, "#cloud-config\n")).hostname == "t-nats-${i}"
    ])
    error_message = "host names (the agent's host dimension) carry the deployment's name"
  }
  assert {
    condition = alltrue([for u in aws_instance.node[*].user_data :
      length(regexall("nats://", u)) == 0 && length(regexall("BEGIN [A-Z ]*PRIVATE KEY", u)) == 0
    ])
    error_message = "routes are tls:// only, and no key travels in user data (only secret ARNs)"
  }
  # The file systemd appends nats-server's output to is the one the agent ships, to this
  # module's log group, one stream per node.
  assert {
    condition = alltrue([for i, u in aws_instance.node[*].user_data : (
      strcontains(one([for f in yamldecode(trimprefix(u, "#cloud-config\n")).write_files : f.content if f.path == "/etc/systemd/system/nats-server.service"]), "StandardOutput=append:/var/log/nats/nats-server.log")
      && jsondecode(one([for f in yamldecode(trimprefix(u, "#cloud-config\n")).write_files : f.content if endswith(f.path, "edge-nats.json")])).logs.logs_collected.files.collect_list[0].file_path == "/var/log/nats/nats-server.log"
      && jsondecode(one([for f in yamldecode(trimprefix(u, "#cloud-config\n")).write_files : f.content if endswith(f.path, "edge-nats.json")])).logs.logs_collected.files.collect_list[0].log_stream_name == "nats-${i}"
      && jsondecode(one([for f in yamldecode(trimprefix(u, "#cloud-config\n")).write_files : f.content if endswith(f.path, "edge-nats.json")])).logs.logs_collected.files.collect_list[0].log_group_name == aws_cloudwatch_log_group.nats.name
    )])
    error_message = "nats-server's log file, the agent's file and stream, and the log group agree"
  }
  assert {
    condition = alltrue([for u in aws_instance.node[*].user_data :
      anytrue([for c in yamldecode(trimprefix(u, "#cloud-config\n")).runcmd : join(" ", c) == "/usr/local/sbin/install-cloudwatch-agent"])
      && strcontains(one([for f in yamldecode(trimprefix(u, "#cloud-config\n")).write_files : f.content if f.path == "/usr/local/sbin/install-cloudwatch-agent"]), "amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s -c 'file:/opt/aws/amazon-cloudwatch-agent/etc/edge-nats.json'")
      && strcontains(one([for f in yamldecode(trimprefix(u, "#cloud-config\n")).write_files : f.content if f.path == "/usr/local/sbin/install-cloudwatch-agent"]), "fingerprint='937616F3450B7D806CBD9725D58167303B789C72'")
    ])
    error_message = "the agent is installed at boot, only with AWS's signature, and started with the node's config"
  }
  assert {
    condition = alltrue([for i, a in aws_cloudwatch_metric_alarm.jetstream_disk :
      a.dimensions.host == "t-nats-${i}" && a.dimensions.path == "/var/lib/nats" && a.threshold == 75
    ])
    error_message = "one disk alarm per node, on its JetStream volume, with the dimensions the agent reports"
  }
  assert {
    condition = alltrue([for i, a in aws_cloudwatch_metric_alarm.metrics_silent :
      a.dimensions == aws_cloudwatch_metric_alarm.jetstream_disk[i].dimensions && a.treat_missing_data == "breaching" && a.statistic == "SampleCount"
      && a.comparison_operator == "LessThanThreshold" && a.threshold == 1 && a.evaluation_periods * a.period == 900
    ]) && length(aws_cloudwatch_metric_alarm.metrics_silent) == 3
    error_message = "one alarm per node for an agent that reports nothing, on the disk alarm's very metric"
  }
  assert {
    condition = alltrue([for u in aws_instance.node[*].user_data :
      strcontains(one([for f in yamldecode(trimprefix(u, "#cloud-config\n")).write_files : f.content if f.path == "/etc/systemd/system/logrotate.timer.d/hourly.conf"]), "OnCalendar=hourly")
    ])
    error_message = "logrotate runs hourly, so maxsize is checked hourly"
  }
}

run "without_the_agent_nothing_half_configured" {
  command = plan

  variables {
    install_cloudwatch_agent = false
  }

  assert {
    condition     = length(aws_cloudwatch_metric_alarm.jetstream_disk) == 0 && length(aws_cloudwatch_metric_alarm.metrics_silent) == 0
    error_message = "no alarm on a metric no one reports"
  }
  assert {
    condition = alltrue([for u in aws_instance.node[*].user_data :
      !anytrue([for c in yamldecode(trimprefix(u, "#cloud-config\n")).runcmd : strcontains(join(" ", c), "cloudwatch-agent")])
    ])
    error_message = "the agent is not installed"
  }
}

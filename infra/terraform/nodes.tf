# ---------------------------------------------------------------------------
# Node IAM role (shared by both managed node groups)
# ---------------------------------------------------------------------------

data "aws_iam_policy_document" "node_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "node" {
  name               = "${var.cluster_name}-node"
  assume_role_policy = data.aws_iam_policy_document.node_assume.json
}

resource "aws_iam_role_policy_attachment" "node" {
  for_each = toset([
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
    "AmazonSSMManagedInstanceCore",
  ])

  role       = aws_iam_role.node.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/${each.value}"
}

# ---------------------------------------------------------------------------
# CPU pool: KFP/Argo/MySQL/MinIO, MLflow, and every non-GPU pipeline step.
# ---------------------------------------------------------------------------

resource "aws_eks_node_group" "cpu" {
  cluster_name    = aws_eks_cluster.this.name
  node_group_name = "cpu"
  node_role_arn   = aws_iam_role.node.arn
  subnet_ids      = aws_subnet.private[*].id
  version         = var.kubernetes_version

  ami_type       = "AL2023_x86_64_STANDARD"
  capacity_type  = var.cpu_capacity_type
  instance_types = var.cpu_instance_types
  disk_size      = var.cpu_disk_size

  scaling_config {
    min_size     = var.cpu_min_size
    desired_size = var.cpu_desired_size
    max_size     = var.cpu_max_size
  }

  update_config {
    max_unavailable = 1
  }

  labels = {
    (local.cpu_node_label_key) = local.cpu_node_label_value
  }

  lifecycle {
    ignore_changes = [scaling_config[0].desired_size]
  }

  depends_on = [
    aws_iam_role_policy_attachment.node,
    aws_eks_addon.vpc_cni,
    aws_eks_addon.kube_proxy,
  ]
}

# ---------------------------------------------------------------------------
# GPU pool: tainted so only pods that tolerate it (Trainer/Tuner steps and the
# NVIDIA device plugin) land here; scales to zero when idle.
# ---------------------------------------------------------------------------

resource "aws_eks_node_group" "gpu" {
  cluster_name    = aws_eks_cluster.this.name
  node_group_name = "gpu"
  node_role_arn   = aws_iam_role.node.arn
  subnet_ids      = aws_subnet.private[*].id
  version         = var.kubernetes_version

  ami_type       = var.gpu_ami_type
  capacity_type  = var.gpu_capacity_type
  instance_types = [var.gpu_instance_type]
  disk_size      = var.gpu_disk_size

  scaling_config {
    min_size     = var.gpu_min_size
    desired_size = var.gpu_desired_size
    max_size     = var.gpu_max_size
  }

  update_config {
    max_unavailable = 1
  }

  labels = {
    (local.gpu_node_label_key) = local.gpu_node_label_value
  }

  taint {
    key    = local.gpu_taint_key
    value  = local.gpu_taint_value
    effect = local.gpu_taint_effect_eks
  }

  lifecycle {
    ignore_changes = [scaling_config[0].desired_size]
  }

  depends_on = [
    aws_iam_role_policy_attachment.node,
    aws_eks_addon.vpc_cni,
    aws_eks_addon.kube_proxy,
  ]
}

# Scale-from-zero hints for the cluster autoscaler. With zero nodes it cannot
# look at a live node, so it reads the label, taint and GPU capacity of the
# future node from these ASG tags. (EKS tags the ASG with
# k8s.io/cluster-autoscaler/enabled and .../<cluster>=owned by itself.)
locals {
  gpu_asg_template_tags = {
    "k8s.io/cluster-autoscaler/node-template/label/${local.gpu_node_label_key}" = local.gpu_node_label_value
    "k8s.io/cluster-autoscaler/node-template/taint/${local.gpu_taint_key}"      = "${local.gpu_taint_value}:${local.gpu_taint_effect_k8s}"
    "k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu"          = tostring(var.gpu_count_per_node)
  }
}

resource "aws_autoscaling_group_tag" "gpu_template" {
  for_each = local.gpu_asg_template_tags

  autoscaling_group_name = aws_eks_node_group.gpu.resources[0].autoscaling_groups[0].name

  tag {
    key                 = each.key
    value               = each.value
    propagate_at_launch = false
  }
}

output "region" {
  description = "AWS region of the stack."
  value       = var.region
}

output "cluster_name" {
  description = "EKS cluster name (aws eks update-kubeconfig --name ...)."
  value       = aws_eks_cluster.this.name
}

output "cluster_endpoint" {
  description = "Kubernetes API server endpoint."
  value       = aws_eks_cluster.this.endpoint
}

output "cluster_certificate_authority_data" {
  description = "Base64 CA bundle of the API server."
  value       = aws_eks_cluster.this.certificate_authority[0].data
}

output "update_kubeconfig_command" {
  description = "Command that writes a kubeconfig entry for this cluster."
  value       = "aws eks update-kubeconfig --region ${var.region} --name ${aws_eks_cluster.this.name}"
}

output "bucket_names" {
  description = "All bucket names keyed by purpose (pipeline_root, dvc_remote, mlflow_artifacts)."
  value       = { for k, b in aws_s3_bucket.this : k => b.bucket }
}

output "pipeline_root_bucket" {
  description = "Bucket holding the KFP pipeline root."
  value       = aws_s3_bucket.this["pipeline_root"].bucket
}

output "dvc_remote_bucket" {
  description = "Bucket used as the DVC remote."
  value       = aws_s3_bucket.this["dvc_remote"].bucket
}

output "mlflow_artifacts_bucket" {
  description = "Bucket behind the MLflow server's --artifacts-destination."
  value       = aws_s3_bucket.this["mlflow_artifacts"].bucket
}

output "pipeline_root" {
  description = "Pipeline root URI for `mlops compile ... --pipeline-root`."
  value       = "s3://${aws_s3_bucket.this["pipeline_root"].bucket}/pipelines"
}

output "dvc_remote_url" {
  description = "URL for `dvc remote add -d storage ...`."
  value       = "s3://${aws_s3_bucket.this["dvc_remote"].bucket}/dvcstore"
}

output "mlflow_artifacts_destination" {
  description = "Value of MLFLOW_ARTIFACTS_DESTINATION in infra/k8s/overlays/<env>/params.env."
  value       = "s3://${aws_s3_bucket.this["mlflow_artifacts"].bucket}/artifacts"
}

output "gpu_node_label" {
  description = "Node label carried by GPU nodes; use it as the nodeSelector of GPU steps."
  value = {
    key   = local.gpu_node_label_key
    value = local.gpu_node_label_value
  }
}

output "gpu_node_taint" {
  description = "Taint on GPU nodes; GPU steps need a matching toleration. effect is given in Kubernetes spelling."
  value = {
    key    = local.gpu_taint_key
    value  = local.gpu_taint_value
    effect = local.gpu_taint_effect_k8s
  }
}

output "irsa_role_arn" {
  description = "IAM role for service accounts (KFP pipeline-runner, KFP UI, MLflow, each profile's default-editor) with read/write on the three buckets."
  value       = aws_iam_role.workload.arn
}

output "irsa_service_accounts" {
  description = "Service accounts (namespace:name) the workload role trusts; annotate each with irsa_role_arn."
  value       = local.workload_service_accounts
}

output "oidc_provider_arn" {
  description = "ARN of the cluster's IAM OIDC provider (for further IRSA roles)."
  value       = aws_iam_openid_connect_provider.eks.arn
}

output "ecr_repository_urls" {
  description = "ECR repositories for the pipeline image and the MLflow server image."
  value       = { for k, r in aws_ecr_repository.this : k => r.repository_url }
}

output "cluster_autoscaler_role_arn" {
  description = "IRSA role for the cluster autoscaler (service account kube-system/cluster-autoscaler)."
  value       = aws_iam_role.cluster_autoscaler.arn
}

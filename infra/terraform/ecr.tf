# Registries for the two images this project builds:
#   pipeline      - infra/docker/Dockerfile (TFX 1.16 + project code), used by every KFP step
#   mlflow-server - infra/docker/mlflow-server.Dockerfile (MLflow + psycopg2 + boto3)
locals {
  ecr_repositories = {
    pipeline      = "${var.cluster_name}/pipeline"
    mlflow_server = "${var.cluster_name}/mlflow-server"
  }
}

resource "aws_ecr_repository" "this" {
  for_each = local.ecr_repositories

  name                 = each.value
  image_tag_mutability = "IMMUTABLE"
  force_delete         = var.bucket_force_destroy

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "AES256"
  }
}

resource "aws_ecr_lifecycle_policy" "this" {
  for_each = aws_ecr_repository.this

  repository = each.value.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the 50 most recent images"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = 50
      }
      action = { type = "expire" }
    }]
  })
}

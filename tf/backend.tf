# Remote state in S3. Partial on purpose: bucket, key and region come from a backend config file,
#   ./deploy.sh init backends/prod.s3.tfbackend     (see backend.s3.tfbackend.example)
# Locking is S3-native (a .tflock object next to the state, Terraform >= 1.11): no DynamoDB lock table.
terraform {
  backend "s3" {
    use_lockfile = true
    encrypt      = true
  }
}

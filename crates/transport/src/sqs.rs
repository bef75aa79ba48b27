//! SQS transport (aws-sdk-sqs). Written in the SQS work.

//! wordstream: count the words of S3 objects into a Kafka changelog.

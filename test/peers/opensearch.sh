#!/usr/bin/env bash
# Real OpenSearch for the elasticsearch exporter's integration tests and benchmark (see README.md here).
#
#   test/peers/opensearch.sh start    download once (mvn, Maven Central), start on 127.0.0.1, wait for
#                                     health yellow, print OPENSEARCH_URL=... (and _DIR/_PID/_VERSION)
#   test/peers/opensearch.sh stop     stop it and remove its directory
#   test/peers/opensearch.sh status   running <url> | stopped
#   test/peers/opensearch.sh url      print the URL
#
# OPENSEARCH_VERSION (default 2.19.6), OPENSEARCH_PORT (default 9201, a free port when taken).
exec bash "$(dirname "${BASH_SOURCE[0]}")/searchserver.sh" opensearch "$@"

#!/usr/bin/env bash
# Real Elasticsearch (core-only integ-test distribution) for the elasticsearch exporter's integration
# tests and benchmark (see README.md here).
#
#   test/peers/elasticsearch.sh start    download once (mvn, Maven Central), start on 127.0.0.1, wait for
#                                        health yellow, print ES_TEST_URLS=... (and ELASTICSEARCH_DIR/_PID/_VERSION)
#   test/peers/elasticsearch.sh stop     stop it and remove its directory
#   test/peers/elasticsearch.sh status   running <url> | stopped
#   test/peers/elasticsearch.sh url      print the URL
#
# ELASTICSEARCH_VERSION (default 8.19.21), ELASTICSEARCH_PORT (default 9202, a free port when taken).
exec bash "$(dirname "${BASH_SOURCE[0]}")/searchserver.sh" elasticsearch "$@"

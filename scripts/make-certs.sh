#!/usr/bin/env bash
# Makes throwaway certificates for the TLS compose cluster (docker-compose.tls.yml) with
# openssl: a CA, a server certificate per service (DNS name of the service, localhost and
# 127.0.0.1), and client certificates for mutual TLS: `book-client` (book-service calling
# auth-service) and `client` (people and tools calling auth-service, e.g. grpcurl -cert/-key).
#
#   scripts/make-certs.sh [DIR]      # default ./certs; an existing DIR is left alone
#
# For local and CI use only: the keys are readable by the containers' user (mode 0644).
set -euo pipefail
DIR=${1:-certs}
if [ -e "$DIR/ca.pem" ]; then
  echo "$DIR/ca.pem exists; not replacing it (remove $DIR to make new certificates)" >&2
  exit 0
fi
command -v openssl >/dev/null || { echo "make-certs: openssl is required" >&2; exit 1; }
mkdir -p "$DIR"
cd "$DIR"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
  -subj "/CN=Bookstore compose CA" -keyout ca-key.pem -out ca.pem 2>/dev/null
issue() {
  local name=$1 san=$2 usage=$3
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$name" \
    -keyout "$name-key.pem" -out "$name.csr" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=%s\nbasicConstraints=CA:FALSE\n' "$san" "$usage" > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 825 \
    -extfile "$name.ext" -out "$name.pem" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}
issue auth-service "DNS:auth-service,DNS:localhost,IP:127.0.0.1" serverAuth
issue book-service "DNS:book-service,DNS:localhost,IP:127.0.0.1" serverAuth
issue book-client "DNS:book-service" clientAuth
issue client "DNS:client" clientAuth
rm -f ca.srl
chmod 0644 ./*.pem
chmod 0600 ca-key.pem
echo "certificates in $DIR: ca.pem, auth-service, book-service, book-client, client"

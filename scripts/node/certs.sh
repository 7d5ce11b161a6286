#!/usr/bin/env bash
# Make (once) the node's PKI with openssl: a CA, the apiserver's serving certificate, client
# certificates for admin, the kubelet, the controller manager, the scheduler, kube-proxy and
# apiserver -> kubelet, the ServiceAccount signing key, and one kubeconfig per client.
# Usage: certs.sh PKI_DIR APISERVER_URL   (NODE_NAME, NODE_IP, SVC_IP, CNI_GW in the environment)
# A second node's PKI: certs.sh PKI_DIR APISERVER_URL CA_DIR — only its kubelet's certificate
# (CN system:node:$NODE_NAME) and kube-proxy's, signed by node 1's CA in CA_DIR, and their
# kubeconfigs.
set -euo pipefail
pki=$1 server=$2 ca_dir=${3:-}
mkdir -p "$pki"
chmod 700 "$pki"
cd "$pki"
if [ -n "$ca_dir" ]; then
  cp "$ca_dir/ca.crt" ca.crt
  ca_key=$ca_dir/ca.key
else
  [ -f ca.crt ] || openssl req -x509 -new -nodes -newkey rsa:2048 -keyout ca.key -out ca.crt \
    -days 3650 -subj "/CN=dbinit-node-ca" 2>/dev/null
  [ -f sa.key ] || { openssl genrsa -out sa.key 2048 2>/dev/null; openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null; }
  ca_key=ca.key
fi

# sign NAME CN O [SANS]: a certificate signed by the CA; with SANS it also serves.
sign() {
  local name=$1 cn=$2 o=$3 sans=${4:-}
  [ -f "$name.crt" ] && return 0
  openssl req -new -nodes -newkey rsa:2048 -keyout "$name.key" -out "$name.csr" \
    -subj "/CN=$cn${o:+/O=$o}" 2>/dev/null
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [ -n "$sans" ]; then
      echo "extendedKeyUsage=serverAuth,clientAuth"
      echo "subjectAltName=$sans"
    else
      echo "extendedKeyUsage=clientAuth"
    fi
  } >"$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey "$ca_key" -CAserial ca.srl -CAcreateserial \
    -out "$name.crt" -days 3650 -extfile "$name.ext" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}
if [ -n "$ca_dir" ]; then
  clients="kubelet kube-proxy"
else
  sign apiserver kube-apiserver "" \
    "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:127.0.0.1,IP:$SVC_IP,IP:$NODE_IP,IP:$CNI_GW"
  sign admin admin system:masters
  sign apiserver-kubelet-client kube-apiserver-kubelet-client system:masters
  sign controller-manager system:kube-controller-manager ""
  sign scheduler system:kube-scheduler ""
  clients="admin kubelet controller-manager scheduler kube-proxy"
fi
sign kubelet "system:node:$NODE_NAME" system:nodes
sign kube-proxy system:kube-proxy ""

# The same server URL works on the host (127.0.0.1 forwarded into the namespace) and inside it
# (a second node's: node 1's address). Written only when changed, and by rename: tests may read
# them while cluster-up runs again.
for u in $clients; do
  cat >"$u.kubeconfig.new" <<KC
apiVersion: v1
kind: Config
clusters:
- name: dbinit-node
  cluster:
    certificate-authority: $pki/ca.crt
    server: $server
users:
- name: $u
  user:
    client-certificate: $pki/$u.crt
    client-key: $pki/$u.key
contexts:
- name: dbinit-node
  context: {cluster: dbinit-node, user: $u, namespace: default}
current-context: dbinit-node
KC
  if cmp -s "$u.kubeconfig.new" "$u.kubeconfig"; then rm -f "$u.kubeconfig.new"; else mv "$u.kubeconfig.new" "$u.kubeconfig"; fi
done

// Node's own fetch (undici, Node 20) ignores HTTPS_PROXY; undici's EnvHttpProxyAgent reads
// HTTPS_PROXY / HTTP_PROXY / NO_PROXY, and the global dispatcher it is set as is the one
// Node's fetch uses. Preloaded with `node --import ./proxy-env.mjs app.mjs`, it sends an
// unchanged program through `enrollgraph serve --proxy` (issue 14; README "Any tool,
// unchanged"). The proxy's CA comes from NODE_EXTRA_CA_CERTS.
import { EnvHttpProxyAgent, setGlobalDispatcher } from "undici";

setGlobalDispatcher(new EnvHttpProxyAgent());

// Runs a command inside a loopback-only network namespace with one way out: the gateway.
//
//   node loopback_bridge.js <unix socket> <port> <command> [args...]
//
// Listens on 127.0.0.1:<port> (inside the namespace), forwards each connection to <unix socket>
// (a filesystem socket, reachable across network namespaces, where the test relays to the
// gateway), runs <command> with this process's stdio and environment, and exits with its status.
'use strict';
const net = require('net');
const { spawn } = require('child_process');

const [socketPath, port, command, ...args] = process.argv.slice(2);
if (!socketPath || !port || !command) {
  console.error('usage: loopback_bridge.js <unix socket> <port> <command> [args...]');
  process.exit(2);
}

const server = net.createServer((client) => {
  const upstream = net.connect(socketPath);
  client.pipe(upstream);
  upstream.pipe(client);
  const close = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', close);
  upstream.on('error', close);
});

server.listen(Number(port), '127.0.0.1', () => {
  const child = spawn(command, args, { stdio: 'inherit' });
  child.on('error', (err) => {
    console.error(`loopback_bridge: cannot run ${command}: ${err.message}`);
    process.exit(127);
  });
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
});
server.on('error', (err) => {
  console.error(`loopback_bridge: cannot listen on 127.0.0.1:${port}: ${err.message}`);
  process.exit(2);
});

/**
 * The HIS port's connection budget applied at the door: the budget decides on a new socket before
 * the server's own connection listeners run (Node's HTTP parser setup, or the TLS handshake on an
 * HTTPS port), and a refused socket is reset (RST, no TIME_WAIT left on the appliance) without ever
 * having had a parser, timers or buffers. With the budget as an ordinary 'connection' listener,
 * every refused connection of a flood first got the whole HTTP connection setup and its teardown.
 */
import type { Server } from 'node:net';
import type { Socket } from 'node:net';
import type { ConnectionBudget } from './connection-budget.ts';

type ConnectionListener = (this: Server, socket: Socket) => void;

/** Call once, before the server accepts: its current 'connection' listeners run only for admitted sockets. */
export function gateConnections(server: Server, budget: ConnectionBudget, onAdmitted: (socket: Socket) => void): void {
  const inner = server.listeners('connection') as ConnectionListener[];
  server.removeAllListeners('connection');
  server.on('connection', function gate(this: Server, socket: Socket) {
    if (budget.admit(socket) === 'refused') {
      socket.resetAndDestroy();
      return;
    }
    onAdmitted(socket);
    for (const listener of inner) listener.call(this, socket);
  });
}

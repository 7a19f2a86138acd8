/**
 * Whether `npm run dev` can have its port. Asked before anything is printed or
 * written, so a second `npm run dev` says one clear line instead of printing
 * its banner and then failing inside `netlify dev`.
 */
import { createServer } from 'node:net'

/** Listens on every interface for a moment: busy if anything holds the port on any address. */
export function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', (error: NodeJS.ErrnoException) => (error.code === 'EADDRINUSE' ? resolve(true) : reject(error)))
    probe.listen({ port, exclusive: true }, () => probe.close(() => resolve(false)))
  })
}

export const portBusyMessage = (port: number) =>
  `Port ${port} is already in use (is another \`npm run dev\` running?). Stop it, or use another port: npm run dev -- --port ${port + 1}`

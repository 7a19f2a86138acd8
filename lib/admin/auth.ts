/** The operator's token, checked before anything is read or written. */
import { isAdminToken } from '../accounts/api-keys.ts'
import { adminUnauthorized } from './schemas.ts'

/** Throws 401 (naming the admin token) unless `authorization` carries ADMIN_TOKEN. */
export function requireAdmin(expected: string | undefined, authorization: string | null) {
  if (!isAdminToken(expected, authorization)) throw adminUnauthorized()
}

/**
 * `render`: draws the Mandelbrot set at a requested size and view, entirely
 * in this process (CPU-bound, no services), in bands of rows with percent
 * progress after each band, then saves it as a PNG asset of the job.
 *
 * Each band is bounded work (at most ~1/32 of the image), and the progress
 * write after it yields to the event loop, so heartbeats keep flowing and a
 * cancel is seen between bands. Its lock is the account plus the `canvas`
 * named in the input, or else the job's `sourceTaskId`: two renders into
 * the same canvas or for the same task do not run at once.
 */
import { createHash } from 'node:crypto'
import { PNG } from 'pngjs'
import { z } from 'zod'
import { defineJob } from './define.ts'

export const MAX_RENDER_SIDE = 4096
export const MAX_RENDER_ITERATIONS = 5000
const BANDS = 32

export const renderInput = z.strictObject({
  width: z.number().int().min(1).max(MAX_RENDER_SIDE).meta({ title: 'Width (pixels)' }),
  height: z.number().int().min(1).max(MAX_RENDER_SIDE).meta({ title: 'Height (pixels)' }),
  maxIterations: z
    .number()
    .int()
    .min(1)
    .max(MAX_RENDER_ITERATIONS)
    .meta({ title: 'Iterations per pixel', description: 'More iterations sharpen the edge of the set; larger images and more iterations take longer.' }),
  /** The point at the middle of the image; default (-0.75, 0) shows the whole set. */
  center: z
    .strictObject({ x: z.number().min(-4).max(4), y: z.number().min(-4).max(4) })
    .optional()
    .meta({ title: 'Center', description: 'The point in the middle of the image; (-0.75, 0) shows the whole set.' }),
  /** 1 fits the whole set; past ~1e13 doubles run out of precision. */
  zoom: z.number().min(0.1).max(1e13).optional().meta({ description: '1 fits the whole set.' }),
  /** The drawing this render is for: one render per canvas at a time. */
  canvas: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'use 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit')
    .optional()
    .meta({
      title: 'Canvas name',
      description:
        '1–64 letters, digits, dots, underscores or hyphens. While a render into a canvas runs, submitting another one into it joins that job instead of starting a second.',
    }),
})
export type RenderInput = z.infer<typeof renderInput>

export interface RenderResult {
  assetId: string
  url: string
  width: number
  height: number
}

export const render = defineJob({
  kind: 'render',
  title: 'Render the Mandelbrot set',
  description: 'Draws the Mandelbrot set at the size and view asked for and saves it as a PNG file of the job.',
  input: renderInput,
  example: { width: 640, height: 400, maxIterations: 200 },
  cost: 1,
  lockedBy: ['input.canvas', 'sourceTaskId'],
  makesAssets: true,
  // Safe to run again: the drawing is a function of the input, and a failed attempt's file is
  // dropped from the job and deleted. What fails here is storage (saving the file), which a
  // few seconds later usually works.
  retry: { maxAttempts: 3 },
  lockKey: (input, account, { sourceTaskId }) => {
    if (input.canvas) return [account, 'render', 'canvas', input.canvas]
    // A task id may hold ':' (not allowed in a key part): lock on its hash.
    if (sourceTaskId) return [account, 'render', 'task', createHash('sha256').update(sourceTaskId).digest('hex').slice(0, 32)]
    return null
  },
  async run({ input, progress, signal, saveAsset }): Promise<RenderResult> {
    const { width, height } = input
    const view = viewOf(input)
    const png = new PNG({ width, height })
    const bandRows = Math.ceil(height / Math.min(BANDS, height))
    for (let top = 0; top < height; top += bandRows) {
      signal.throwIfAborted()
      const bottom = Math.min(height, top + bandRows)
      renderRows(view, top, bottom, png.data)
      await progress(`Rendered rows ${bottom} of ${height}`, Math.round((bottom / height) * 90))
    }
    signal.throwIfAborted()
    await progress('Encoding PNG', 92)
    const data = PNG.sync.write(png, { colorType: 2, deflateLevel: 6 }) // RGB: no alpha channel to store
    signal.throwIfAborted()
    const asset = await saveAsset({
      filename: `${input.canvas ?? 'mandelbrot'}-${width}x${height}.png`,
      contentType: 'image/png',
      data,
    })
    return { assetId: asset.assetId, url: asset.url, width, height }
  },
})

export interface View {
  width: number
  height: number
  maxIterations: number
  /** Complex-plane coordinates of pixel (0, 0) and the size of one pixel. */
  left: number
  top: number
  step: number
}

export function viewOf(input: RenderInput): View {
  const { width, height, maxIterations } = input
  const center = input.center ?? { x: -0.75, y: 0 }
  // At zoom 1 the whole set (3.5 wide, 2.5 tall) fits whichever side is tighter.
  const step = Math.max(3.5 / width, 2.5 / height) / (input.zoom ?? 1)
  return { width, height, maxIterations, left: center.x - (step * width) / 2, top: center.y + (step * height) / 2, step }
}

/** Fills rows [top, bottom) of an RGBA buffer: escape time with smooth colouring, the set itself black. */
export function renderRows(view: View, top: number, bottom: number, rgba: Uint8Array) {
  const { width, maxIterations, left, step } = view
  for (let py = top; py < bottom; py++) {
    const ci = view.top - py * step
    for (let px = 0; px < width; px++) {
      const cr = left + px * step
      let zr = 0
      let zi = 0
      let zr2 = 0
      let zi2 = 0
      let n = 0
      if (!inMainBulbs(cr, ci)) {
        while (n < maxIterations && zr2 + zi2 <= 256) {
          zi = 2 * zr * zi + ci
          zr = zr2 - zi2 + cr
          zr2 = zr * zr
          zi2 = zi * zi
          n++
        }
      } else {
        n = maxIterations
      }
      const at = (py * width + px) * 4
      if (n >= maxIterations) {
        rgba[at] = rgba[at + 1] = rgba[at + 2] = 0
      } else {
        // Continuous escape count, so bands of colour do not show the iteration steps.
        const smooth = n + 1 - Math.log2(Math.log2(zr2 + zi2) / 2)
        const t = smooth / 64
        rgba[at] = channel(t, 0)
        rgba[at + 1] = channel(t, 0.15)
        rgba[at + 2] = channel(t, 0.3)
      }
      rgba[at + 3] = 255
    }
  }
}

const channel = (t: number, phase: number) => Math.round(255 * (0.5 + 0.5 * Math.cos(2 * Math.PI * (t + phase))))

/** Points in the main cardioid or the period-2 bulb never escape: skip iterating them. */
function inMainBulbs(x: number, y: number): boolean {
  const q = (x - 0.25) ** 2 + y * y
  return q * (q + (x - 0.25)) <= 0.25 * y * y || (x + 1) ** 2 + y * y <= 1 / 16
}

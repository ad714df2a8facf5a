"""Models and methods: where a model comes from (embedded, the base-size packages, a folder, a
zip, the hub) and loading it with its head (`modeling`, `heads`, `pooling`, `modelzip`,
`packaged`), padding and batching (`batching`), each method's cost and the time estimate
(`estimate`), the GPUs a server may use (`gpus`).

May import: the root modules (errors, config, runs, results), `finetuner.data`,
`finetuner.tasks`, `finetuner.metrics`. Never the training run, serving, the server or the page.
"""

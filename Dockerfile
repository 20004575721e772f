# Astro (`astro dev start`, `astro deploy`). Astro Runtime 3.3-x ships Apache Airflow 3.3, the line
# requirements.in pins (3.3.2); the provider reference lists runtime 3.3-2 as the newest 3.3 release.
# UNVERIFIED: that 3.3-2 carries exactly Airflow 3.3.2, and that its Python is 3.11 (pyproject.toml
# asks for 3.11; the code is on PYTHONPATH, not pip-installed, so a newer Python only risks the pins).
# The -base variant has no ONBUILD steps: the plain image would install requirements.txt, the full
# lock, whose apache-airflow pin the Runtime refuses. Here the image installs
# docker/requirements-image.txt (requirements.in without apache-airflow) and packages.txt.
FROM astrocrpublic.azurecr.io/runtime:3.3-2-base

WORKDIR /usr/local/airflow
USER root
COPY packages.txt .
RUN if grep -qv '^\s*\(#.*\)\?$' packages.txt; then \
        apt-get update && grep -v '^\s*#' packages.txt | xargs apt-get install -y --no-install-recommends \
        && rm -rf /var/lib/apt/lists/*; \
    fi
USER astro
COPY docker/requirements-image.txt .
RUN pip install --no-cache-dir -r requirements-image.txt
COPY --chown=astro:0 . .

ENV PYTHONPATH=/usr/local/airflow/include \
    CDP_CONFIG=/usr/local/airflow/include/config/cdp.yaml

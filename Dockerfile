# DeepSpeech training and serving, CPU. Build: docker build -t deepspeech .
# Each RUN below is a set-up line of README.md (tests/test_docker.py checks it).
FROM debian:bookworm-slim
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1
WORKDIR /opt/deepspeech
COPY . .
RUN apt-get update
RUN apt-get install -y python3 python3-venv g++ make libsndfile1
RUN python3 -m venv .venv
RUN .venv/bin/pip install -r requirements.txt
RUN .venv/bin/pip install --no-deps -e .
ENV PATH=/opt/deepspeech/.venv/bin:$PATH
# Train: docker run -v "$PWD/data:/data" -v "$PWD/runs:/runs" deepspeech --train_files ...
# Serve: docker run -p 8080:8080 --entrypoint deepspeech-server deepspeech --model ...
ENTRYPOINT ["python", "DeepSpeech.py"]
CMD ["--helpfull"]

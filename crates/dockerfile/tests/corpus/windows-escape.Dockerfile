# escape=`

FROM mcr.microsoft.com/windows/servercore:ltsc2022
SHELL ["powershell", "-Command", "$ErrorActionPreference = 'Stop';"]
COPY testfile.txt c:\
RUN dir c:\ `
    && echo done
WORKDIR C:\app
ENV APP_HOME=C:\app
ADD https://example.com/tool.zip C:\tools\tool.zip
RUN Expand-Archive -Path C:\tools\tool.zip `
    -DestinationPath C:\tools
CMD ["powershell", "-File", "C:\\app\\start.ps1"]

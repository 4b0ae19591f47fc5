pragma solidity ^0.6.0;

contract EtherForwarder { // expect: other
    address public token;

    constructor(address t) public {
        token = t;
    }

    receive() external payable {}

    function forwardTokens(address to, uint256 amount) external {
        (bool ok, ) = token.call(abi.encodeWithSignature("transfer(address,uint256)", to, amount));
        require(ok, "token transfer failed");
    }
}
